"""The one-line header (DESIGN §4): workflow, intake status, running/max, tokens, rate limits."""

from __future__ import annotations

from typing import Any

from textual.markup import escape
from textual.widgets import Static

from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.text import countdown, human_count, one_line


def render_status(snapshot: dict[str, Any], glyphs: Glyphs) -> str:
    """Content markup for the status line; theme variables keep it legible in any theme."""
    intake = snapshot.get("intake") or {}
    parts = [f"[b $primary]vik-tui[/]  {escape(str(snapshot.get('name', '')))}", "intake " + _intake(intake, glyphs)]
    parts.append(f"running {snapshot.get('running', 0)}/{snapshot.get('max_issue_concurrency', 0)}")
    tokens = snapshot.get("tokens") or {}
    parts.append(f"tokens in {human_count(tokens.get('input'))} out {human_count(tokens.get('output'))}")
    limits = _rate_limits(snapshot.get("rate_limits") or {})
    if limits:
        parts.append(limits)
    return "   ".join(parts)


def _intake(intake: dict[str, Any], glyphs: Glyphs) -> str:
    status = intake.get("status")
    next_in = intake.get("next_poll_in")
    when = f" next in {countdown(next_in)}" if next_in is not None else ""
    if status == "polling":
        return f"[$primary]{glyphs.polling}[/] polling"
    if status == "idle":
        return f"{glyphs.idle}{when}" if when else f"{glyphs.idle} idle"
    if status == "paused":
        return f"[$warning]{glyphs.paused} paused[/]"
    if status == "error":
        message = escape(one_line(intake.get("error"), 60)) or "pull failed"
        return f"[$error]{glyphs.failed} error: {message}[/]{when}"
    if status == "done":
        return f"[$success]{glyphs.completed} done[/]"
    if status == "stopping":
        return "[$warning]stopping…[/]"
    return "[$text-muted]starting…[/]"


def _rate_limits(limits: dict[str, Any]) -> str:
    shown = []
    for scope, info in sorted(limits.items()):
        if not isinstance(info, dict):
            continue
        pct = info.get("used_percent")
        if isinstance(pct, (int, float)):
            style = "$error" if pct >= 90 else "$warning" if pct >= 70 else "$text-muted"
            shown.append(f"[{style}]{escape(str(scope))} {pct:.0f}%[/]")
        elif info.get("remaining") is not None:
            total = f"/{info['limit']}" if info.get("limit") is not None else ""
            shown.append(f"{escape(str(scope))} {info['remaining']}{total}")
    return ("rate " + " ".join(shown)) if shown else ""


class StatusLine(Static):
    """Repaints only when the text changes (the snapshot is re-read every frame)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=True, **kwargs)
        self._last = ""

    def show(self, snapshot: dict[str, Any], glyphs: Glyphs, stopping: bool = False) -> None:
        text = render_status(snapshot, glyphs)
        if stopping:
            text += "   [$warning b]stopping agents…[/]"
        if text != self._last:
            self._last = text
            self.update(text, layout=False)  # fixed height (tcss): a layout pass per second costs ~80 ms
