"""Building the frozen `EngineView` the screens read (`Supervisor.snapshot`) from the live
runs. Cheap enough for every frame: between pulls the list is kept as one frame (the views of
issues that never ran, and where the live ones go), so a snapshot of a 10,000-issue tracker
builds only the issues with runs."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vik_tui.config.schema import Workflow
from vik_tui.engine.gate import active_issues, host_load
from vik_tui.engine.holds import Holds
from vik_tui.engine.intake import Issue
from vik_tui.engine.listing import Listing
from vik_tui.engine.places.hosts import HostPool
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import EngineView, IssueView, RateLimitView, RetryView, RunStatus, RunView, StageSpec, Tokens


@dataclass(frozen=True, slots=True)
class _Frame:
    """The list as of one pull: every issue's place, the views of those that never ran, and
    where the ones with runs go (built afresh every snapshot)."""

    listed_order: Sequence[str]
    issue_count: int
    live: frozenset[str]  # issues with runs, or waiting for another state's stages
    pins: dict[str, str]
    views: list[IssueView | None]  # None where a live issue goes
    slots: tuple[tuple[int, str, bool], ...]  # (position, issue id, listed) of the live issues


class IssueViews:
    """Issue views in list order. Between pulls only the issues with runs are built again: the
    rest of the list (a 10,000-issue tracker's backlog) is kept as it was, so a snapshot costs
    the live issues, not the tracker's size."""

    def __init__(self) -> None:
        # issue id -> (the issue object, listed, its view) for issues without runs
        self._never_ran: dict[str, tuple[Issue, bool, IssueView]] = {}
        self._frame: _Frame | None = None

    def build(
        self,
        listed_order: Sequence[str],
        issues: Mapping[str, Issue],
        by_issue: Mapping[str, list[StageRun]],
        pins: Mapping[str, str],
        now: float,
        waiting: Mapping[str, str] | None = None,
    ) -> tuple[IssueView, ...]:
        """Listed issues first, then the unlisted ones that still have runs."""
        waiting = waiting or {}
        live = by_issue.keys() | waiting.keys()
        frame = self._frame
        if (
            frame is None
            or frame.listed_order is not listed_order  # a new pull
            or frame.issue_count != len(issues)
            or frame.live != live  # an issue ran for the first time, or began or ended waiting
            or frame.pins != pins
        ):
            frame = self._frame = self._new_frame(listed_order, issues, by_issue, pins, frozenset(live))
        views = frame.views.copy()
        for position, issue_id, is_listed in frame.slots:
            issue = issues[issue_id]
            runs = tuple(run.to_view(now) for run in by_issue.get(issue_id, ()))
            views[position] = _issue_view(issue, is_listed, pins.get(issue_id), runs, waiting.get(issue_id))
        return tuple(views)  # type: ignore[arg-type]  # every None slot was filled above

    def _new_frame(
        self,
        listed_order: Sequence[str],
        issues: Mapping[str, Issue],
        by_issue: Mapping[str, list[StageRun]],
        pins: Mapping[str, str],
        live: frozenset[str],
    ) -> _Frame:
        """One pass over the list: the views of issues that never ran (kept from the last pass
        while intake hands the same issue again), and the places of the others."""
        listed = set(listed_order)
        order = list(listed_order) + [i for i in issues if i not in listed and i in by_issue]
        views: list[IssueView | None] = []
        slots: list[tuple[int, str, bool]] = []
        cache = self._never_ran
        for issue_id in order:
            issue = issues[issue_id]
            is_listed = issue_id in listed
            if issue_id in live:
                slots.append((len(views), issue_id, is_listed))
                views.append(None)
                continue
            cached = cache.get(issue_id)
            if (
                cached is not None
                and cached[1] == is_listed
                and (cached[0] is issue or cached[0] == issue)
                and cached[2].host == pins.get(issue_id)
            ):
                if cached[0] is not issue:  # a new pull, the same issue: keep the view, remember the object
                    cache[issue_id] = (issue, is_listed, cached[2])
                views.append(cached[2])
                continue
            view = _issue_view(issue, is_listed, pins.get(issue_id), (), None)  # not live: no runs, no wait
            cache[issue_id] = (issue, is_listed, view)
            views.append(view)
        if len(cache) > 2 * len(issues) + 100:  # forget issues intake no longer knows
            self._never_ran = {k: v for k, v in cache.items() if k in issues}
        return _Frame(listed_order, len(issues), live, dict(pins), views, tuple(slots))


def runs_by_issue(runs: Iterable[StageRun], stages: Sequence[str]) -> dict[str, list[StageRun]]:
    """Runs grouped by issue in stage file order: one pass, not one scan per issue."""
    order = {name: index for index, name in enumerate(stages)}
    grouped: dict[str, list[StageRun]] = {}
    for run in runs:
        grouped.setdefault(run.issue_id, []).append(run)
    for group in grouped.values():
        group.sort(key=lambda r: order.get(r.stage, len(order)))
    return grouped


def usage(runs: Iterable[StageRun]) -> tuple[Tokens, dict[str, RateLimitView]]:
    """Tokens summed over every session, and the latest rate limit of each scope."""
    totals = {"input": 0, "output": 0, "cache_read": 0}
    rate_limits: dict[str, RateLimitView] = {}
    for run in runs:
        for session in run.sessions:
            for key in totals:
                totals[key] += session.tokens.get(key, 0)
            for scope, info in session.rate_limits.items():
                rate_limits[scope] = rate_limit_view(scope, info)
    return Tokens.of(totals), rate_limits


def retry_views(runs: Iterable[StageRun], now: float) -> tuple[RetryView, ...]:
    return tuple(
        RetryView(
            issue_id=r.issue_id,
            stage=r.stage,
            attempt=r.attempt,
            due_at=r.retry_due_at,
            due_in=max(0.0, (r.retry_due or now) - now),
            error=r.reason,
        )
        for r in runs
        if r.status == RunStatus.RETRY_WAIT
    )


def rate_limit_view(scope: str, info: Mapping[str, Any]) -> RateLimitView:
    """The session keeps each scope's latest rate_limit record as a dict; the view is typed."""

    def number(key: str) -> Any:
        value = info.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    resets_at = info.get("reset_at", info.get("resets_at"))  # vik's name; `resets_at` before it
    return RateLimitView(
        scope=scope,
        used_percent=number("used_percent"),
        remaining=number("remaining"),
        limit=number("limit"),
        resets_at=resets_at if isinstance(resets_at, str) else None,
    )


@dataclass(frozen=True, slots=True)
class Flags:
    """The Supervisor's commands in force, as the header shows them."""

    paused: bool
    draining: bool
    stopping: bool


def engine_view(
    workflow: Workflow,
    workflow_path: Path,
    all_runs: Collection[StageRun],
    listing: Listing,
    issue_views: IssueViews,
    waiting: Mapping[str, str],
    pool: HostPool | None,
    holds: Holds,
    flags: Flags,
    now: float,
) -> EngineView:
    """`Supervisor.snapshot()`: `now` is event-loop time (for the countdowns)."""
    pins = pool.pins if pool is not None else {}
    by_issue = runs_by_issue(all_runs, list(workflow.issue.stages))
    issues = issue_views.build(listing.listed, listing.issues, by_issue, pins, now, waiting)
    tokens, rate_limits = usage(all_runs)
    return EngineView(
        workflow=str(workflow_path),
        name=workflow_path.parent.name + "/" + workflow_path.name,
        intake=listing.view(workflow.loop.max_iterations, flags.paused, now),
        stages=tuple(workflow.issue.stages),
        stage_states=frozenset(stage.when.state for stage in workflow.issue.stages.values()),
        running=len(active_issues(all_runs)),
        max_issue_concurrency=workflow.loop.max_issue_concurrency,
        tokens=tokens,
        rate_limits=rate_limits,
        issues=issues,
        hosts=pool.views(host_load(all_runs)) if pool is not None else (),
        rejected=listing.rejected,
        retries=retry_views(all_runs, now),
        draining=flags.draining,
        stopping=flags.stopping,
        holds=holds.views(),
        budget=holds.budget_view(),
        stage_specs=tuple(
            StageSpec(name, stage.when.state, holds.runtime(stage)) for name, stage in workflow.issue.stages.items()
        ),
    )


def _issue_view(
    issue: Issue, listed: bool, host: str | None, runs: tuple[RunView, ...], waiting: str | None
) -> IssueView:
    """An issue's view: what intake gave, and what the supervisor adds (its runs, its place, why it waits)."""
    return IssueView(
        id=issue.id,
        title=issue.title,
        state=issue.state,
        description=issue.description,
        listed=listed,
        extra=issue.extra,
        runs=runs,
        host=host,
        waiting=waiting,
    )
