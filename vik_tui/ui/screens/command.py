"""A command to run in a terminal, shown instead of run: an attached UI whose supervisor (or the
issue's workspace) is on another machine cannot open a shell there itself, and a UI in a browser
tab (`vik-tui web`) or on a terminal that cannot be suspended has no terminal to hand over."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from vik_tui.ui.text import markup_text

ELSEWHERE = "the workspace is on the supervisor's machine, not here. Run this there:"
IN_BROWSER = "a browser tab has no terminal. Run this in a terminal on {host}:"
NO_SUSPEND = "this terminal cannot be handed over. Run this in another terminal:"


class CommandScreen(ModalScreen[None]):
    """`c` copies the command (OSC 52, where the terminal allows it); Esc, `q` or enter close."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "copy"),
        Binding("escape,q,enter", "close", "close", show=False),
    ]

    def __init__(self, title: str, command: str, why: str = ELSEWHERE) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.command = command
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(
                f"{markup_text(self.title_text)}: {markup_text(self.why)}",
                id="question",
            )
            yield Static(markup_text(self.command), id="command", markup=True)
            with Horizontal(classes="buttons"):
                yield Button("Copy (c)", variant="primary", id="copy")
                yield Button("Close (esc)", variant="default", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.command)
        where = "browser's" if self.app.is_web else "terminal's"
        self.notify(f"command sent to the {where} clipboard (not every {where[:-2]} accepts it)", timeout=5)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)
