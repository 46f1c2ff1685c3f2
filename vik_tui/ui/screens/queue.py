"""`t`: what Symphony's dashboard shows next to the list: throughput, rate limits, retry queue.

Refreshed once a second from the engine snapshot while open.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from vik_tui.engine.view import EngineView
from vik_tui.ui.app_api import vik_app
from vik_tui.ui.text import human_count, markup_text, one_line, retry_due


def queue_markup(view: EngineView, rate: float | None) -> str:
    lines = ["[b]Throughput[/]"]
    total = view.tokens
    per_sec = "—" if rate is None else f"{human_count(rate)} tokens/s"
    lines.append(
        f"  last minute: {per_sec} · total in {human_count(total.input)} out {human_count(total.output)}"
        f" · running {view.running}/{view.max_issue_concurrency}"
    )
    lines += ["", "[b]Rate limits[/]"]
    if not view.rate_limits:
        lines.append("  [$text-muted]none reported by the agent CLIs[/]")
    for scope, info in sorted(view.rate_limits.items()):
        used = f"{info.used_percent:.0f}% used" if info.used_percent is not None else ""
        left = f"{info.remaining}/{info.limit} left" if info.remaining is not None and info.limit else ""
        resets = f"resets {info.resets_at}" if info.resets_at else ""
        lines.append(
            "  "
            + " · ".join(
                bit for bit in (markup_text(one_line(scope, 40)), used, left, markup_text(one_line(resets, 60))) if bit
            )
        )
    lines += ["", f"[b]Retry queue[/] ({len(view.retries)})"]
    if not view.retries:
        lines.append("  [$text-muted]empty[/]")
    else:
        lines.append("  [$text-muted]ISSUE/STAGE             ATTEMPT  DUE IN  LAST ERROR[/]")
    for retry in sorted(view.retries, key=lambda r: r.due_in):
        where = one_line(f"{retry.issue_id}/{retry.stage}", 22)
        lines.append(
            f"  {markup_text(where.ljust(22))}  #{retry.attempt + 1:<6}  {retry_due(retry.due_in):>6}  "
            f"[$error]{markup_text(one_line(retry.error, 80))}[/]"
        )
    return "\n".join(lines)


class QueueScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,t", "close", "close")]

    vik = vik_app()

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(id="queue", classes="dialog"):
            yield Static("[b]Throughput · rate limits · retry queue[/]", classes="dialog-title")
            with VerticalScroll():
                yield Static("", id="queue-text")
            yield Static("[$text-muted]esc, q or t closes[/]", classes="dialog-hint")

    def on_mount(self) -> None:
        self._refresh()
        if not self.vik.clock.frozen:
            self.set_interval(1.0, self._refresh)

    def _refresh(self) -> None:
        vik = self.vik
        self.query_one("#queue-text", Static).update(queue_markup(vik.engine.snapshot(), vik.throughput.rate()))

    def action_close(self) -> None:
        self.dismiss(None)
