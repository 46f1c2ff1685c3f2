"""Building the frozen `EngineView` the screens read (`Supervisor.snapshot`) from the live
runs. Cheap enough for every frame: the view of an issue that never ran is kept and handed out
again until intake replaces the issue, so a list of 10,000 issues costs one pass."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vik_tui.engine.intake import Issue
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import IssueView, RateLimitView, RetryView, RunStatus, Tokens


class IssueViews:
    """Issue views in list order; keeps those of issues that never ran between snapshots."""

    def __init__(self) -> None:
        # issue id -> (the issue object, listed, its view) for issues without runs
        self._never_ran: dict[str, tuple[Issue, bool, IssueView]] = {}

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
        listed = set(listed_order)
        order = list(listed_order) + [i for i in issues if i not in listed and i in by_issue]
        views = []
        cache = self._never_ran
        for issue_id in order:
            issue = issues[issue_id]
            runs = by_issue.get(issue_id)
            is_listed = issue_id in listed
            if not runs:  # an issue that never ran: the same view until intake replaces the issue
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
            view = IssueView(
                id=issue.id,
                title=issue.title,
                state=issue.state,
                description=issue.description,
                listed=is_listed,
                extra=issue.extra,
                runs=tuple(run.to_view(now) for run in runs or ()),
                host=pins.get(issue_id),
                waiting=waiting.get(issue_id) if waiting else None,
            )
            if not runs:
                cache[issue_id] = (issue, is_listed, view)
            views.append(view)
        if len(cache) > 2 * len(issues) + 100:  # forget issues intake no longer knows
            self._never_ran = {k: v for k, v in cache.items() if k in issues}
        return tuple(views)


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
