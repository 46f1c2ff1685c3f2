"""The part of the app (`app.VikApp`) that screens and widgets use, as a Protocol.

Screens and widgets read the app through `vik = vik_app()` instead of importing `app.py`, so
the app can import its screens without a circle: the app sits above the screens, the screens
above the widgets, and this contract below them all (an import-linter contract keeps it so).
"""

from __future__ import annotations

from typing import Protocol, cast

from textual.dom import DOMNode

from vik_tui.ui.clock import Clock
from vik_tui.ui.engine_api import Engine
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.session_text import SessionTexts
from vik_tui.ui.throughput import Throughput


class Vik(Protocol):
    engine: Engine
    clock: Clock
    glyphs: Glyphs
    throughput: Throughput
    texts: SessionTexts  # every session's text on screen
    engine_done: bool  # the engine's run() has returned
    quitting: bool  # stopping the agents before the app exits

    def request_refresh(self) -> None:
        """Repaint everything (snapshot, header, table) at the next frame."""

    def bindings_may_change(self) -> None:
        """What a key would do may have changed: refresh the footer if it did."""

    @property
    def attached(self) -> bool:
        """The engine is a supervisor in another process (`vik-tui attach`): q detaches."""

    def header_note(self) -> str | None:
        """What the header shows after the workflow's name (`attached to pid N`, `stopping agents…`)."""

    def stop_supervisor(self) -> None:
        """Attached: ask, then stop the supervisor and its agents (`Q`)."""


class vik_app:
    """`vik = vik_app()` on a screen or widget: the running app, as the `Vik` contract."""

    def __get__(self, node: DOMNode, owner: type[DOMNode] | None = None) -> Vik:
        return cast(Vik, node.app)
