"""What keeps new sessions from starting until a time: the daily token budget and the
providers' rate limits.

It exists so the Supervisor only asks "is this held?" and decides: the counting (tokens of
every session, rate-limit notices), saying each hold once, waking dispatch when a hold ends and
the holds' views live here. It never touches a `StageRun`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vik_tui.agents.events import AgentEvent, RateLimit, TokenUsage
from vik_tui.config.schema import StageConfig, Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.budget import DailyBudget, next_utc_midnight, session_over, tokens_of
from vik_tui.engine.clock import iso_seconds
from vik_tui.engine.rate_limits import MAX_WAIT_SEC, Hold, RateLimits
from vik_tui.engine.service.journal import describe_os_error
from vik_tui.engine.service.rate_holds import HoldStore
from vik_tui.engine.stages.lines import COUNTED
from vik_tui.engine.view import BudgetView, HoldKind, HoldView


def runtime_of(workflow: Workflow, stage: StageConfig) -> str:
    """The runtime a stage's agent runs on ("?" for an agent no longer configured)."""
    agent = workflow.agents.get(stage.agent)
    return agent.runtime if agent is not None else "?"


class Holds:
    """One per supervisor: the day's token count, the rate-limit holds, and a dispatch timer per hold."""

    def __init__(
        self,
        workflow: Callable[[], Workflow],
        emit: Callable[[ee.EngineEvent], None],
        log: Callable[[ee.Level, str], None],
        dispatch: Callable[[], None],
        store: HoldStore | None = None,
    ) -> None:
        self._workflow = workflow
        self._store = store  # where the rate-limit holds survive a restart (None: a supervisor without the lock)
        self._emit, self._log, self._dispatch = emit, log, dispatch
        self.daily = DailyBudget()
        self._budget_said = ""  # the UTC day `budget_spent` was said
        self.rate_limits = RateLimits()
        self._timers: dict[str, asyncio.TimerHandle] = {}  # a dispatch when a hold ends, by hold
        self._holds_said: dict[str, Hold] = {}  # runtime -> the rate-limit hold last said
        self.loop: asyncio.AbstractEventLoop | None = None  # set by `run()`

    def runtime(self, stage: StageConfig) -> str:
        return runtime_of(self._workflow(), stage)

    async def rebuild(self, sessions_dir: Path) -> None:
        """Today's tokens from the session files (a restart keeps the day's count), off the loop."""
        self.daily.adopt(*await asyncio.to_thread(DailyBudget.rebuild, sessions_dir))

    def idle_for(self, records: Sequence[AgentEvent]) -> bool:
        """Whether `count` would do nothing for this batch: no token or rate-limit record in it
        and no budget to check (most batches at a slow pace: one line, a message or a tool
        call), so a caller may skip it."""
        for record in records:
            if type(record) in COUNTED:
                return False
        budget = self._workflow().loop.budget
        return budget.session_tokens is None and budget.daily_tokens is None

    def count(self, runtime: Callable[[], str], records: Sequence[AgentEvent], tokens: Mapping[str, int]) -> str | None:
        """A batch of a session's events: tokens for the budgets, rate-limit notices (`runtime`:
        the session's, asked only for one). Returns why the session is over its own budget, if it is."""
        for record in records:
            kind = type(record)  # (exact types: a flood's batch is hundreds of other kinds)
            if kind is TokenUsage:
                assert isinstance(record, TokenUsage)
                self.daily.add(tokens_of(record.counts()))
            elif kind is RateLimit:
                assert isinstance(record, RateLimit)
                name = runtime()
                found = self.rate_limits.observe(name, record)
                if found is not None:
                    self.say_hold(name, found[1])
        return session_over(tokens, self._workflow().loop.budget.session_tokens)

    def check_daily(self) -> None:
        if self._workflow().loop.budget.daily_tokens is not None:
            self.budget_spent()

    def say_hold(self, runtime: str, note: str | None) -> None:
        """A runtime's new hold: said once (with the clamp, if any), and a dispatch when it ends."""
        hold = self.rate_limits.active(runtime)
        if hold is None:
            return
        if note:
            self._log("warning", f"{runtime} rate limit: {note}")
        if self._holds_said.get(runtime) is hold:
            return
        self._holds_said[runtime] = hold
        self.persist()  # on disk before it is announced
        self._emit(ee.RateLimited(runtime=runtime, until=hold.until_iso, reason=hold.reason))
        self._dispatch_at(f"rate:{runtime}", hold.until - time.time() + 0.05)

    def succeeded(self, runtime: str) -> None:
        """A session of `runtime` completed: its next 429 backs off from the start again."""
        if runtime in self.rate_limits.backoffs:
            self.rate_limits.succeeded(runtime)
            self.persist()

    def persist(self) -> None:
        """Write the rate-limit holds in force (and the runtimes' next backoff), so a restart
        still waits for the reset. A write that fails is logged; the holds stay in memory."""
        if self._store is None:
            return
        wall = time.time()
        holds = [h for h in self.rate_limits.holds.values() if h.until > wall]
        try:
            self._store.save(sorted(holds, key=lambda h: h.runtime), self.rate_limits.backoffs)
        except OSError as exc:
            self._log(
                "error",
                f"cannot write {self._store.path}: {describe_os_error(exc)}; rate limits would not survive a restart",
            )

    def restore(self) -> None:
        """Before the first dispatch: the holds an earlier supervisor left, each still in force
        said (and waited for) again; one whose reset has passed meanwhile is dropped."""
        if self._store is None:
            return
        holds, backoff, warnings = self._store.load()
        for warning in warnings:
            self._log("warning", warning)
        for runtime, seconds in backoff.items():
            self.rate_limits.adopt_backoff(runtime, seconds)
        wall = time.time()
        for kept in holds:
            if kept.until <= wall:
                continue
            note = None
            if kept.until - wall > MAX_WAIT_SEC:  # a hand edit, or a clock set back: the same clamp as a notice
                kept = Hold(kept.runtime, wall + MAX_WAIT_SEC, kept.reason)
                note = f"a hold kept from before the restart was more than {MAX_WAIT_SEC / 86400:g} days ahead"
            hold = self.rate_limits.adopt(kept)
            self._log("info", f"{hold.runtime} rate limit kept from before the restart: until {hold.until_iso}")
            self.say_hold(hold.runtime, note)
        self.persist()  # without the holds that are over

    def rate_held(self, stage: StageConfig) -> bool:
        return self.rate_limits.active(self.runtime(stage)) is not None

    def budget_spent(self) -> bool:
        """The daily budget is spent: said once per day, and a dispatch at the next UTC midnight."""
        limit = self._workflow().loop.budget.daily_tokens
        if limit is None or not self.daily.spent(limit):
            return False
        if self._budget_said != self.daily.day:
            self._budget_said = self.daily.day
            midnight = next_utc_midnight()
            self._emit(ee.BudgetSpent(used=self.daily.used_today(), limit=limit, resumes_at=iso_seconds(midnight)))
            self._dispatch_at("budget", midnight.timestamp() - time.time() + 1)
        return True

    def _dispatch_at(self, key: str, delay: float) -> None:
        if self.loop is None:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self.loop.call_later(max(0.0, delay), self._dispatch)

    def cancel_timers(self) -> None:
        for timer in self._timers.values():
            timer.cancel()

    def views(self) -> tuple[HoldView, ...]:
        """What keeps new sessions from starting until a time (for the view and explain)."""
        wall = time.time()
        holds: list[HoldView] = []
        limit = self._workflow().loop.budget.daily_tokens
        if limit is not None and self.daily.spent(limit):
            midnight = next_utc_midnight()
            holds.append(
                HoldView(
                    HoldKind.BUDGET,
                    "daily",
                    iso_seconds(midnight),
                    max(0.0, midnight.timestamp() - wall),
                    f"daily token budget spent: {self.daily.used_today()} of {limit} tokens today (UTC)",
                )
            )
        for runtime in sorted(self.rate_limits.holds):
            hold = self.rate_limits.active(runtime, wall)
            if hold is not None:
                holds.append(HoldView(HoldKind.RATE_LIMIT, runtime, hold.until_iso, hold.until - wall, hold.reason))
        return tuple(holds)

    def budget_view(self) -> BudgetView:
        budget = self._workflow().loop.budget
        return BudgetView(self.daily.used_today(), budget.daily_tokens, budget.session_tokens)
