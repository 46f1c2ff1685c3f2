"""`e` (or enter): one session whole, every line and every tool output, scrollable, with search.

The pane clips long outputs to their first lines to stay readable while agents stream; here
nothing is clipped. The file is replayed through the engine in a thread. `/` searches
(case-insensitive), `n` / `N` jump to the next / previous match.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Log, Static

from vik_tui.ui.app_api import vik_app
from vik_tui.ui.highlight import SessionHighlighter, theme_styles
from vik_tui.ui.records import format_records
from vik_tui.ui.text import markup_text, sanitize, wrap_lines


class ReaderScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,e", "close", "close"),
        Binding("slash", "search", "search", key_display="/"),
        Binding("n", "next_match(1)", "next"),
        Binding("N", "next_match(-1)", "previous", key_display="N"),
    ]

    vik = vik_app()

    def __init__(self, title: str, session_file: str) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.session_file = session_file
        self.lines: list[str] = []
        self.matches: list[int] = []
        self.match_index = -1

    def compose(self) -> ComposeResult:
        with Vertical(id="reader", classes="dialog"):
            yield Static(
                f"[b]{markup_text(self.title_text)}[/] · [$text-muted]{markup_text(self.session_file)}[/]",
                classes="dialog-title",
            )
            log = Log(highlight=True, id="reader-log")
            log.highlighter = SessionHighlighter(theme_styles(self.app.theme_variables), self.vik.glyphs)
            yield log
            search = Input(placeholder="search (enter: first match, n / N: next / previous)", id="reader-search")
            search.display = False
            yield search
            yield Static("[$text-muted]/ search · n N next/previous · esc or q closes[/]", id="reader-hint")

    def on_mount(self) -> None:
        self.query_one("#reader-log", Log).write_line("reading…")
        self.run_worker(self._load(), exclusive=True)

    async def _load(self) -> None:
        vik = self.vik
        engine, clock, glyphs = vik.engine, vik.clock, vik.glyphs
        width = max(60, self.size.width - 8)

        try:
            records = await engine.session_records(self.session_file)
            lines = await asyncio.to_thread(format_records, records, clock, glyphs, width, full=True)
        except Exception as exc:  # an unreadable file: say so instead of failing
            lines = sanitize(f"(cannot read the session: {exc})").split("\n")
        log = self.query_one("#reader-log", Log)
        visible = log.scrollable_content_region.width - 1  # a Log cuts what does not fit: wrap it here
        self.lines = wrap_lines(lines, visible if visible > 20 else width) or ["(the session has no records yet)"]
        log.clear()
        log.write_lines(self.lines)
        log.scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_search(self) -> None:
        box = self.query_one("#reader-search", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#reader-search")
    def _search(self, event: Input.Submitted) -> None:
        needle = event.value.strip().lower()
        self.matches = [i for i, line in enumerate(self.lines) if needle and needle in line.lower()]
        self.match_index = -1
        self.query_one("#reader-log", Log).focus()
        if not self.matches:
            self.notify(f"no match for {event.value!r}" if needle else "empty search", title="search", timeout=4)
            return
        self.action_next_match(1)

    def action_next_match(self, step: int) -> None:
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        line = self.matches[self.match_index]
        log = self.query_one("#reader-log", Log)
        log.scroll_to(y=max(0, line - 2), animate=False)
        hint = self.query_one("#reader-hint", Static)
        hint.update(
            f"[$text-muted]match {self.match_index + 1}/{len(self.matches)} (line {line + 1}) · n N next/previous"
            " · esc or q closes[/]"
        )
