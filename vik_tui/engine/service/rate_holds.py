"""Rate-limit holds that survive a restart: `service/rate_limits.json`.

A hold is a provider's "nothing more until 17:00" (or our backoff after a 429 that named no
time). Kept in memory only, a restart (an upgrade's `vik-tui restart`, a crash) forgot it and
sent the next sessions straight into the same wall. The Supervisor writes the whole set each
time it changes, atomically, next to `retries.jsonl`; the next start reads it back before its
first dispatch. A hold that is over by then is dropped; the next backoff of each runtime is
kept too, so a 429 that repeats across a restart goes on doubling. A damaged entry loses only
itself, said in a warning (the provider's next notice sets the hold again).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vik_tui.engine.rate_limits import Hold
from vik_tui.engine.service.atomic import write_atomic

RATE_LIMITS_FILE = "rate_limits.json"  # in service/
VERSION = 1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _hold(entry: Any) -> Hold:
    """One entry of `holds` back into a Hold; ValueError with a short reason when it is not one."""
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    runtime, until, reason = entry.get("runtime"), _number(entry.get("until")), entry.get("reason")
    if not isinstance(runtime, str) or not runtime:
        raise ValueError("no runtime")
    if until is None:
        raise ValueError(f"until must be a number of epoch seconds (got {entry.get('until')!r})")
    return Hold(runtime, until, reason if isinstance(reason, str) else "rate limit from before the restart")


class HoldStore:
    """The file and the last text written (an unchanged set is not written again)."""

    def __init__(self, service_dir: Path) -> None:
        self.path = service_dir / RATE_LIMITS_FILE
        self._written: str | None = None

    def load(self) -> tuple[list[Hold], dict[str, float], list[str]]:
        """(the holds, the next backoff by runtime, a warning per part that could not be read).
        A missing file is nothing and no warning; the holds are returned as written, over or not."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            self._written = self._text([], {})  # no file is no holds: nothing to write until there are some
            return [], {}, []
        except OSError as exc:
            return [], {}, [f"cannot read {self.path}: {exc.strerror or exc}; rate limits from before are forgotten"]
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], {}, [f"{self.path}: not JSON ({exc.msg}); rate limits from before are forgotten"]
        if not isinstance(data, dict) or not isinstance(data.get("holds", []), list):
            return [], {}, [f"{self.path}: not a rate-limits file; rate limits from before are forgotten"]
        holds: list[Hold] = []
        warnings: list[str] = []
        for number, entry in enumerate(data.get("holds", []), 1):
            try:
                holds.append(_hold(entry))
            except ValueError as exc:
                warnings.append(f"{self.path} hold #{number}: {exc}; that hold is dropped, the others are kept")
        raw_backoff = data.get("backoff")
        backoff: dict[str, float] = {}
        if isinstance(raw_backoff, dict):
            for runtime, value in raw_backoff.items():
                seconds = _number(value)
                if seconds is not None and seconds > 0:
                    backoff[str(runtime)] = seconds
        self._written = text
        return holds, backoff, warnings

    def save(self, holds: Iterable[Hold], backoff: Mapping[str, float]) -> None:
        """Write the whole set atomically, unless it is what the file already holds. Raises OSError."""
        text = self._text(holds, backoff)
        if text == self._written:
            return
        write_atomic(self.path, text)
        self._written = text

    @staticmethod
    def _text(holds: Iterable[Hold], backoff: Mapping[str, float]) -> str:
        entries = [
            {"runtime": hold.runtime, "until": hold.until, "until_utc": hold.until_iso, "reason": hold.reason}
            for hold in holds
        ]
        return (
            json.dumps({"v": VERSION, "holds": entries, "backoff": dict(backoff)}, ensure_ascii=False, indent=1) + "\n"
        )
