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
from textual.widgets import DataTable, Log

from vik_tui.ui.textual_compat import PRIVATE_NAMES, CellCacheTable, StreamLog

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


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield CellCacheTable(cursor_type="row")


async def test_a_cell_cache_table_renders_only_the_changed_cell_and_shows_every_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = OneTable()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(CellCacheTable)
        name, value = table.add_columns("name", "value")
        for i in range(6):
            table.add_row(f"row {i}", f"v{i}", key=f"k{i}")
        await pilot.pause()

        def text(y: int) -> str:  # screen line y of the table (line 0 is the header)
            return table.render_line(y).text

        def style(y: int) -> Any:  # the colours of the first text on line y (not its row index)
            found = next(segment.style for segment in table.render_line(y) if segment.text.strip())
            return found.clear_meta_and_links() if found else None

        assert "row 2" in text(3) and "v2" in text(3)
        rendered: list[tuple[int, int]] = []
        render_cell = DataTable._render_cell

        def counting(self: Any, row: int, column: int, *args: Any, **kwargs: Any) -> Any:
            rendered.append((row, column))
            return render_cell(self, row, column, *args, **kwargs)

        monkeypatch.setattr(DataTable, "_render_cell", counting)
        table.update_cell("k2", value, "v9")
        table.drop_stale_renders()
        lines = [text(y) for y in range(1, 7)]
        assert "v9" in lines[2] and "v2" not in lines[2]
        assert [line for i, line in enumerate(lines) if i != 2] == [text(y) for y in (1, 2, 4, 5, 6)]
        assert [cell for cell in rendered if cell[0] >= 0] == [(2, 1)]  # a DataTable renders all 12 again

        rendered.clear()
        cursor_style = style(1)  # row 0 has the cursor
        plain_style = style(2)
        table.move_cursor(row=3)
        await pilot.pause()
        assert style(4) == cursor_style  # the cursor moved with its colours
        assert style(1) == plain_style
        assert sorted({row for row, _column in rendered if row >= 0}) == [0, 3]  # only the two rows re-rendered

        table.update_cell("k4", name, "row X")  # a new value is rendered even with the cursor elsewhere
        table.drop_stale_renders()
        assert "row X" in text(5)
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert style(2) != plain_style  # new theme: nothing kept from the old
