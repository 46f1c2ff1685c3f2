"""Workflow findings (the same as `vik-tui doctor`): shown instead of a traceback when the
workflow cannot start, and over the main screen when a hot-reload edit is rejected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.engine.engine_events import plural
from vik_tui.ui.text import markup_text


def findings_markup(findings: Sequence[Diagnostic], file_name: str) -> str:
    """One block per finding: `severity [code] line N · pointer` then the message."""
    blocks = []
    for item in findings:
        severity = str(item.severity)
        style = "$error" if item.severity == Severity.ERROR else "$warning"
        where = f"{file_name}:{item.line}" if item.line else file_name
        if item.line and item.column:
            where += f":{item.column}"
        pointer = f" · [b]{markup_text(item.pointer)}[/]" if item.pointer else ""
        blocks.append(
            f"[{style} b]{severity}[/] [$text-muted]\\[{markup_text(item.code)}][/] "
            f"{markup_text(where)}{pointer}\n    {markup_text(item.message)}"
        )
    return "\n\n".join(blocks) if blocks else "[$success]No findings.[/]"


def summary(findings: Sequence[Diagnostic]) -> str:
    errors = sum(1 for f in findings if f.severity == Severity.ERROR)
    warnings = len(findings) - errors
    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"


class DiagnosticsScreen(ModalScreen[str]):
    """Dismisses with "quit", "recheck" or "close"; the caller decides what each means."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "finish('quit')", "quit"),
        Binding("r", "finish('recheck')", "re-check"),
        Binding("escape", "finish('close')", "close", show=False),
    ]

    def __init__(self, findings: Sequence[Diagnostic], path: str, headline: str, closable: bool = False) -> None:
        super().__init__(classes="modal diagnostics")
        self.findings = findings
        self.path = path
        self.headline = headline
        self.closable = closable

    def compose(self) -> ComposeResult:
        with Vertical(id="diagnostics", classes="dialog"):
            yield Static(
                f"[b $error]{markup_text(self.headline)}[/]\n[b]{markup_text(self.path)}[/] · {summary(self.findings)}",
                classes="dialog-title",
            )
            with VerticalScroll(id="findings"):
                yield Static(findings_markup(self.findings, self.path.rsplit("/", 1)[-1]), id="findings-text")
            hint = (
                "fix the file: it is reloaded on save · esc or q closes this"
                if self.closable
                else "fix the file, then r re-checks · q quits"
            )
            yield Static(f"[$text-muted]{hint} · `vik-tui doctor` prints the same[/]", classes="dialog-hint")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "finish" and parameters and parameters[0] == "recheck":
            return not self.closable or None
        return True

    def action_finish(self, result: str) -> None:
        if result == "close" and not self.closable:
            result = "quit"
        self.dismiss(result)


class RejectedEditScreen(DiagnosticsScreen, inherit_bindings=False):
    """Over the running app when a hot-reload edit is rejected: `q` and Esc only close it (the
    app keeps running on the last good configuration), and the footer says exactly that."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "finish('close')", "close", key_display="esc")]

    def __init__(self, findings: Sequence[Diagnostic], path: str, headline: str) -> None:
        super().__init__(findings, path, headline, closable=True)
