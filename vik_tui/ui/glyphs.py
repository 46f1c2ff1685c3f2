"""Status glyphs, with an ASCII set for terminals and fonts without them (`VIK_TUI_ASCII=1`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vik_tui.engine.view import RunStatus, SessionState


@dataclass(frozen=True)
class Glyphs:
    reserved: str
    preparing: str
    spinner: tuple[str, ...]
    running: str  # static "running" mark where a spinner would be distracting (tab labels)
    completed: str
    failed: str
    cancelled: str
    retry: str
    none: str
    tool: str
    ok: str
    bad: str
    more: str  # "… N more lines"
    paused: str
    idle: str
    polling: str
    rule: str  # brackets the outcome line: "── completed ──"

    def for_status(self, status: RunStatus | SessionState | None, frame: int = 0) -> str:
        """The glyph of a stage run status or a session state (a spinner while running)."""
        if status == RunStatus.RUNNING:
            return self.spinner[frame % len(self.spinner)]
        if status is None:
            return self.none
        glyphs: dict[str, str] = {
            RunStatus.RESERVED: self.reserved,
            RunStatus.PREPARING: self.preparing,
            SessionState.STARTING: self.preparing,
            RunStatus.COMPLETED: self.completed,
            RunStatus.FAILED: self.failed,
            RunStatus.CANCELLED: self.cancelled,
            RunStatus.RETRY_WAIT: self.retry,
        }
        return glyphs.get(status, self.none)


UNICODE = Glyphs(
    reserved="◌",
    preparing="◔",
    spinner=("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"),
    running="●",
    completed="✓",
    failed="✗",
    cancelled="⊘",
    retry="↻",
    none="·",
    tool="▸",
    ok="✓",
    bad="✗",
    more="…",
    paused="‖",
    idle="○",
    polling="●",
    rule="──",
)
ASCII = Glyphs(
    reserved="o",
    preparing="~",
    spinner=("|", "/", "-", "\\"),
    running="*",
    completed="+",
    failed="x",
    cancelled="-",
    retry="R",
    none=".",
    tool="$",
    ok="ok",
    bad="x",
    more="...",
    paused="=",
    idle="o",
    polling="*",
    rule="--",
)


def default_glyphs() -> Glyphs:
    return ASCII if os.environ.get("VIK_TUI_ASCII", "") not in ("", "0") else UNICODE
