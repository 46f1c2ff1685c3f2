"""Where the .tcss files live: inside the package in a wheel, beside it in a source checkout."""

from __future__ import annotations

from pathlib import Path

import vik_tui


def styles_dir() -> Path:
    """`vik_tui/styles` (wheel force-include) if present, else `<repo>/styles`."""
    package = Path(vik_tui.__file__).parent
    inside = package / "styles"
    return inside if inside.is_dir() else package.parent / "styles"


def stylesheet(name: str) -> Path:
    return styles_dir() / name
