"""vik-tui: a terminal supervisor for unattended coding agents."""

__version__ = "0.1.0"
