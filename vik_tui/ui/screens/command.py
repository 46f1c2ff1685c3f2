"""A command to run on the supervisor's machine, shown instead of run: an attached UI whose
supervisor (or the issue's workspace) is on another machine cannot open a shell there itself."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class CommandScreen(ModalScreen[None]):
    """`c` copies the command (OSC 52, where the terminal allows it); Esc, `q` or enter close."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "copy"),
        Binding("escape,q,enter", "close", "close", show=False),
    ]

    def __init__(self, title: str, command: str) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(
                f"{escape(self.title_text)}: the workspace is on the supervisor's machine, not here. Run this there:",
                id="question",
            )
            yield Static(escape(self.command), id="command", markup=True)
            with Horizontal(classes="buttons"):
                yield Button("Copy (c)", variant="primary", id="copy")
                yield Button("Close (esc)", variant="default", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.command)
        self.notify("command sent to the terminal's clipboard (not every terminal accepts it)", timeout=5)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss(None)
