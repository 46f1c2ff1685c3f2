"""Widgets of the main screen: status line, issue list, session panes, engine log."""
