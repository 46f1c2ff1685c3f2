"""Rate limits per runtime: when a provider says its limit is reached, new sessions of that
runtime wait instead of hitting the same wall.

Two signals: a `rate_limit` observation with nothing left (`remaining` 0 or 100 % used) and a
reset time (Claude's `rate_limit_event` with `status: rejected`, Codex's rate-limit snapshot),
and a session that failed on a 429 / overload after the CLI's own retries (Codex's
"exceeded retry limit, last status: 429 Too Many Requests", Claude's `api_error_status` 429 or
529), which names no reset time: then the wait is a backoff that doubles while it repeats.
A reset time in the past or absurdly far ahead is clamped, and the clamp is said. Running
sessions are never touched; only the start of new ones waits.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from vik_tui.agents.events import RateLimit
from vik_tui.engine.clock import iso_seconds

MIN_WAIT_SEC = 30.0  # a reset time already past (clock skew, a stale notice): wait this long
MAX_WAIT_SEC = 7 * 24 * 3600.0  # the longest provider window (Codex's weekly one); beyond is a bad value
BACKOFF_SEC = 60.0  # a 429 with no reset time; doubles while it repeats
MAX_BACKOFF_SEC = 30 * 60.0

_LIMITED = re.compile(
    r"\b429\b|too many requests|rate[ _-]?limit|\b529\b|overloaded|usage limit|hit your (usage )?limit",
    re.IGNORECASE,
)


def is_rate_limit_failure(reason: str | None) -> bool:
    """Whether a failed session's reason says the provider refused for load or quota."""
    return bool(reason) and _LIMITED.search(reason or "") is not None


@dataclass(frozen=True, slots=True)
class Hold:
    """New sessions of `runtime` wait until `until` (epoch seconds); `reason` says why."""

    runtime: str
    until: float
    reason: str

    @property
    def until_iso(self) -> str:
        return iso_seconds(datetime.fromtimestamp(self.until, UTC))


def clamp(reset_at: str, now: float) -> tuple[float, str | None]:
    """(when to resume, a note when the reset time had to be clamped)."""
    try:
        reset = datetime.fromisoformat(reset_at).timestamp()
    except (ValueError, OverflowError):
        return now + BACKOFF_SEC, f"unreadable reset time {reset_at!r}; waiting {BACKOFF_SEC:g} s"
    if reset <= now:
        return now + MIN_WAIT_SEC, f"reset time {reset_at} is in the past; waiting {MIN_WAIT_SEC:g} s"
    if reset - now > MAX_WAIT_SEC:
        days = MAX_WAIT_SEC / 86400
        return now + MAX_WAIT_SEC, f"reset time {reset_at} is more than {days:g} days ahead; waiting {days:g} days"
    return reset, None


class RateLimits:
    """The holds in force, by runtime. Owned by the Supervisor."""

    def __init__(self) -> None:
        self.holds: dict[str, Hold] = {}
        self._backoff: dict[str, float] = {}  # runtime -> the next backoff without a reset time

    def observe(self, runtime: str, event: RateLimit, now: float | None = None) -> tuple[Hold, str | None] | None:
        """A rate-limit observation: a hold when nothing is left and it names a reset time."""
        exhausted = event.remaining == 0 or (event.used_percent is not None and event.used_percent >= 100)
        if not exhausted or not event.reset_at:
            return None
        now = time.time() if now is None else now
        until, note = clamp(event.reset_at, now)
        return self._hold(runtime, until, f"{event.scope} limit reached"), note

    def failed(self, runtime: str, reason: str | None, now: float | None = None) -> Hold | None:
        """A session that failed on a 429 / overload: a backoff hold, unless a hold stands already."""
        if not is_rate_limit_failure(reason):
            return None
        now = time.time() if now is None else now
        current = self.active(runtime, now)
        if current is not None:  # the provider named its reset time (or a backoff runs): that stands
            return current
        wait = self._backoff.get(runtime, BACKOFF_SEC)
        self._backoff[runtime] = min(wait * 2, MAX_BACKOFF_SEC)
        short = (reason or "").split(";")[0][:120]
        return self._hold(runtime, now + wait, f"the last session failed on the provider's limit ({short})")

    def _hold(self, runtime: str, until: float, reason: str) -> Hold:
        current = self.holds.get(runtime)
        if current is not None and current.until >= until:
            return current
        hold = Hold(runtime, until, reason)
        self.holds[runtime] = hold
        return hold

    def active(self, runtime: str, now: float | None = None) -> Hold | None:
        """The hold on `runtime` still in force; an expired one is forgotten (and its backoff reset)."""
        hold = self.holds.get(runtime)
        if hold is None:
            return None
        if hold.until <= (time.time() if now is None else now):
            del self.holds[runtime]
            return None
        return hold

    def adopt(self, hold: Hold) -> Hold:
        """A hold an earlier supervisor left, in force again (a later one standing wins)."""
        return self._hold(hold.runtime, hold.until, hold.reason)

    def adopt_backoff(self, runtime: str, backoff: float) -> None:
        """The next backoff an earlier supervisor had reached for `runtime`."""
        self._backoff[runtime] = min(backoff, MAX_BACKOFF_SEC)

    @property
    def backoffs(self) -> dict[str, float]:
        """The next backoff by runtime, for those a 429 without a reset time has raised."""
        return dict(self._backoff)

    def succeeded(self, runtime: str) -> None:
        """A session of `runtime` completed: the next 429 starts from the first backoff again."""
        self._backoff.pop(runtime, None)
