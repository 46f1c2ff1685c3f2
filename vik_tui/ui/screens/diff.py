"""`d`: the workspace's `git diff`, fetched by the engine (here or on the issue's SSH host), shown scrollable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Log, Static

from vik_tui.ui.highlight import DiffHighlighter, theme_styles
from vik_tui.ui.text import markup_text, sanitize

MAX_DIFF_LINES = 50_000


class DiffScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,d", "close", "close")]

    def __init__(self, issue_id: str, where: str, load: Callable[[str], Awaitable[str]]) -> None:
        super().__init__(classes="modal")
        self.issue_id = issue_id
        self.where = where
        self.load = load

    def compose(self) -> ComposeResult:
        with Vertical(id="diff", classes="dialog"):
            yield Static(
                f"[b]git diff[/] · {markup_text(self.issue_id)} · [$text-muted]{markup_text(self.where)}[/]",
                classes="dialog-title",
            )
            log = Log(max_lines=MAX_DIFF_LINES, highlight=True, id="diff-log")
            log.highlighter = DiffHighlighter(theme_styles(self.app.theme_variables))
            yield log
            yield Static("[$text-muted]esc or q closes[/]", classes="dialog-hint")

    def on_mount(self) -> None:
        log = self.query_one("#diff-log", Log)
        log.write_line("loading…")
        self.run_worker(self._load(), exclusive=True)

    async def _load(self) -> None:
        try:
            text = await self.load(self.issue_id)
        except Exception as exc:  # git missing, permissions: say so instead of failing
            text = f"(git diff failed: {exc})"
        log = self.query_one("#diff-log", Log)
        log.clear()
        lines = sanitize(text).rstrip("\n").split("\n")
        log.write_lines(lines if any(lines) else ["(no changes)"])
        log.scroll_home(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
