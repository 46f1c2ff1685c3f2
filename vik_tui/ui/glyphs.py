"""Status glyphs, with an ASCII set for terminals and fonts without them (`VIK_TUI_ASCII=1`)."""

from __future__ import annotations

import os
from dataclasses import dataclass


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

    def for_status(self, status: str | None, frame: int = 0) -> str:
        """The glyph of a stage run status (reserved|preparing|running|completed|...)."""
        if status == "running":
            return self.spinner[frame % len(self.spinner)]
        return {
            "reserved": self.reserved,
            "preparing": self.preparing,
            "starting": self.preparing,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "retry_wait": self.retry,
        }.get(status or "", self.none)


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
