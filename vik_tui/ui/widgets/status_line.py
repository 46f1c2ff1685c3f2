"""The one-line header: workflow, intake, running/max, what needs attention, tokens/s over the
last minute, pending retries, token totals and rate limits (most urgent first: a narrow
terminal cuts the end)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import Static

from vik_tui.engine.view import EngineView, HoldKind, HostView, IntakeStatus, IntakeView, RateLimitView
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.text import countdown, human_count, markup_text, one_line


def render_status(view: EngineView, glyphs: Glyphs, rate: float | None = None, note: str | None = None) -> str:
    """Content markup for the status line; theme variables keep it legible in any theme.
    `note` (`stopping agents…`, an attached UI's `attached to pid 4242`) follows the name."""
    parts = [f"[b $primary]vik-tui[/]  {markup_text(one_line(view.name, 80))}"]
    if note:
        warn = "gone" in note or "stopping" in note or note.endswith("…")
        parts.append(f"[{'$warning' if warn else '$accent'} b]{markup_text(one_line(note, 120))}[/]")
    parts.append("intake " + _intake(view.intake, glyphs))
    if view.draining:
        parts.append(f"[$warning b]draining · {view.active_run_count} running[/]")
    else:
        parts.append(f"running {view.running}/{view.max_issue_concurrency}")
    for hold in view.holds:  # what keeps new stages from starting until a time
        what = (
            "budget spent" if hold.kind == HoldKind.BUDGET else f"{markup_text(one_line(hold.scope, 40))} rate-limited"
        )
        until = f" {countdown(hold.until_in)}" if hold.until_in is not None else ""
        parts.append(f"[$error]{what}{until}[/]")
    if view.hosts:
        parts.append(_hosts(view.hosts, glyphs))
    if view.attention_count:
        count = view.attention_count
        parts.append(f"[$error b]! {count} need{'s' if count == 1 else ''} attention[/]")
    if rate is not None:
        parts.append(f"{human_count(rate)} tok/s")
    if view.retries:
        count, soonest = len(view.retries), min(r.due_in for r in view.retries)
        noun = "retry" if count == 1 else "retries"
        when = f"next in {countdown(soonest)}" if soonest > 0 else "next waits for a slot"
        parts.append(f"[$warning]{glyphs.retry} {count} {noun}, {when}[/]")
    tokens = view.tokens
    parts.append(f"tokens in {human_count(tokens.input)} out {human_count(tokens.output)}")
    limits = _rate_limits(view.rate_limits)
    if limits:
        parts.append(limits)
    return "   ".join(parts)


def _hosts(hosts: tuple[HostView, ...], glyphs: Glyphs) -> str:
    """`hosts b1 2/2 · b2 ✗`: each SSH host's stages against its cap; an unreachable one in red."""
    shown = []
    for host in hosts:
        name = markup_text(one_line(host.name, 40))
        if host.healthy is False:
            shown.append(f"[$error]{name} {glyphs.failed}[/]")
        elif host.healthy is None:
            shown.append(f"[$text-muted]{name} …[/]")
        else:
            cap = f"/{host.cap}" if host.cap is not None else ""
            full = host.cap is not None and host.running >= host.cap
            shown.append(f"[$warning]{name} {host.running}{cap}[/]" if full else f"{name} {host.running}{cap}")
    return "hosts " + " · ".join(shown)


def _intake(intake: IntakeView, glyphs: Glyphs) -> str:
    status = intake.status
    next_in = intake.next_poll_in
    when = f" next in {countdown(next_in)}" if next_in is not None else ""
    if status == IntakeStatus.POLLING:
        return f"[$primary]{glyphs.polling}[/] polling"
    if status == IntakeStatus.IDLE:
        return f"{glyphs.idle}{when}" if when else f"{glyphs.idle} idle"
    if status == IntakeStatus.PAUSED:
        return f"[$warning]{glyphs.paused} paused[/]"
    if status == IntakeStatus.ERROR:
        message = markup_text(one_line(intake.error, 60)) or "pull failed"
        return f"[$error]{glyphs.failed} error: {message}[/]{when}"
    if status == IntakeStatus.DONE:
        return f"[$success]{glyphs.completed} done[/]"
    if status == IntakeStatus.STOPPING:
        return "[$warning]stopping…[/]"
    return "[$text-muted]starting…[/]"


def _rate_limits(limits: Mapping[str, RateLimitView]) -> str:
    shown = []
    for scope, info in sorted(limits.items()):
        pct = info.used_percent
        if pct is not None:
            style = "$error" if pct >= 90 else "$warning" if pct >= 70 else "$text-muted"
            shown.append(f"[{style}]{markup_text(one_line(scope, 40))} {pct:.0f}%[/]")
        elif info.remaining is not None:
            total = f"/{info.limit}" if info.limit is not None else ""
            shown.append(f"{markup_text(one_line(scope, 40))} {info.remaining}{total}")
    return ("rate " + " ".join(shown)) if shown else ""


class StatusLine(Static):
    """Repaints only when the text changes (the snapshot is re-read every frame)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=True, **kwargs)
        self._last = ""

    def show(self, view: EngineView, glyphs: Glyphs, note: str | None = None, rate: float | None = None) -> None:
        text = render_status(view, glyphs, rate, note)
        if text != self._last:
            self._last = text
            self.update(text, layout=False)  # fixed height (tcss): a layout pass per second costs ~80 ms
