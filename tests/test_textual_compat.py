"""The private Textual names the UI relies on (all in `vik_tui/ui/textual_compat.py`) are still
there and still do what it needs, on the Textual installed: `textual>=8.2.8,<9` is a range, and
a release inside it that renames or changes one fails here, naming it, instead of the screen
going wrong."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import textual
from textual.app import App, ComposeResult
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import Log

from vik_tui.ui.textual_compat import PRIVATE_NAMES, StreamLog

WHERE = "vik_tui/ui/textual_compat.py relies on it"


def missing_names() -> list[str]:
    """`module.Class._name` of every private name this Textual no longer has."""
    return [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls, name in PRIVATE_NAMES
        if not callable(getattr(cls, name, None))
    ]


def test_every_private_name_is_there() -> None:
    missing = missing_names()
    assert not missing, f"Textual {textual.__version__} has no {', '.join(missing)}: {WHERE}"


def test_they_are_called_the_way_the_compat_module_expects() -> None:
    scroll_update = list(inspect.signature(Widget._scroll_update).parameters)
    assert scroll_update == ["self", "virtual_size"], (
        f"Textual {textual.__version__} changed Widget._scroll_update{scroll_update}: {WHERE}"
    )
    assert "self._update_size(" in inspect.getsource(Log.write_lines), (
        f"Textual {textual.__version__}: Log.write_lines no longer calls Log._update_size: {WHERE}"
    )
    declared = Widget.__dict__.get("virtual_size")
    assert isinstance(declared, Reactive), (
        f"Textual {textual.__version__}: Widget.virtual_size is no longer a reactive: {WHERE}"
    )


def test_a_missing_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Widget, "_scroll_update")
    assert missing_names() == ["textual.widget.Widget._scroll_update"]


class OneLog(App[None]):
    CSS = "StreamLog { height: 10; overflow-x: hidden; overflow-y: auto; }"

    def compose(self) -> ComposeResult:
        yield StreamLog()


async def test_a_stream_log_write_asks_no_layout_starts_no_thread_and_shows_its_scrollbar() -> None:
    app = OneLog()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(StreamLog)
        layouts: list[dict[str, Any]] = []
        refresh = log.refresh

        def spy(*regions: Any, **kwargs: Any) -> Any:
            if kwargs.get("layout"):
                layouts.append(kwargs)
            return refresh(*regions, **kwargs)

        log.refresh = spy  # type: ignore[method-assign]
        log.write_lines([f"line {i}" for i in range(50)])
        assert list(app.workers) == []  # a plain Log measures every write in a new thread
        await pilot.pause()
        assert log.show_vertical_scrollbar
        assert log.vertical_scrollbar.window_virtual_size == 50
        layouts.clear()  # the scrollbar appearing is the one layout a write may cause
        log.write_lines([f"more {i}" for i in range(5)])
        assert layouts == []
        await pilot.pause()
        assert log.vertical_scrollbar.window_virtual_size == 55  # kept up to date without a layout
