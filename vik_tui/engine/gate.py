"""What keeps a stage from starting now, as a typed answer the Supervisor acts on.

It exists so dispatch reads as a decision: for a due retry or a stage whose state the issue
shows, `retry` and `stage` say `Go` (with the host) or `Wait` and why: not its state, already
run, completed before, another state's stage still in the checkout, no free issue slot, a rate
limit, no host with room, a stage a reload removed. The gates are checked in the order the
Supervisor always did; nothing here changes a run (choosing a host pins it, in `host_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from vik_tui.config.schema import StageConfig
from vik_tui.engine.intake import Issue
from vik_tui.engine.places.coordination import HostCoordination
from vik_tui.engine.service.completed import CompletedStore
from vik_tui.engine.stages.runs import StageRun, stages_of_another_state, waiting_text


class Why(StrEnum):
    NOT_ITS_STATE = "not_its_state"  # the issue does not show the stage's state
    ALREADY = "already"  # active, waiting to retry, or finished while the issue kept the state
    COMPLETED = "completed"  # the completed-work record says it ran for this state (before a restart too)
    OTHER_STATE = "other_state"  # a stage of the issue's previous state still runs (one state at a time)
    NO_SLOT = "no_slot"  # loop.max_issue_concurrency reached
    RATE_LIMITED = "rate_limited"  # its runtime is held
    NO_HOST = "no_host"  # every usable SSH host is full or down
    ISSUE_GONE = "issue_gone"  # a due retry whose issue intake no longer has
    STAGE_REMOVED = "stage_removed"  # a due retry whose stage a reload removed


@dataclass(frozen=True, slots=True)
class Go:
    config: StageConfig
    host: str | None


@dataclass(frozen=True, slots=True)
class Wait:
    why: Why
    text: str = ""  # for OTHER_STATE: "waiting for plan to finish"


@dataclass(frozen=True, slots=True)
class Room:
    """What every gate of one dispatch pass shares: the issues with an active run (a slot
    each), the limit, the rate-limit check and the host chooser."""

    active: set[str]
    limit: int
    rate_held: Callable[[StageConfig], bool]
    host_for: Callable[[str], tuple[bool, str | None]]

    def no_slot(self, issue_id: str) -> bool:
        return issue_id not in self.active and len(self.active) >= self.limit


def active_issues(runs: Iterable[StageRun]) -> set[str]:
    """Issues with a stage reserved, preparing or running: each takes one slot."""
    return {r.issue_id for r in runs if r.active}


def host_load(runs: Iterable[StageRun]) -> dict[str, int]:
    """Stage sessions preparing or running on each host now."""
    load: dict[str, int] = {}
    for run in runs:
        if run.host is not None and run.active:
            load[run.host] = load.get(run.host, 0) + 1
    return load


def room(
    runs: Collection[StageRun], limit: int, rate_held: Callable[[StageConfig], bool], hosts: HostCoordination | None
) -> Room:
    """The room of one dispatch pass: with SSH workers, a host is chosen (and counted) per start."""
    load = host_load(runs)

    def host_for(issue_id: str) -> tuple[bool, str | None]:
        if hosts is None:  # no pool: always, on this machine
            return True, None
        host = hosts.host_for(issue_id, load)
        return host is not None, host

    return Room(active_issues(runs), limit, rate_held, host_for)


def retry(run: StageRun, issues: Mapping[str, Issue], stages: Mapping[str, StageConfig], room: Room) -> Go | Wait:
    """A retry whose backoff is over."""
    if run.issue_id not in issues:
        return Wait(Why.ISSUE_GONE)
    if room.no_slot(run.issue_id):
        return Wait(Why.NO_SLOT)
    config = stages.get(run.stage)
    if config is None:  # removed by a reload since the retry was scheduled
        return Wait(Why.STAGE_REMOVED)
    return _placed(run.issue_id, config, room)


def stage(
    issue: Issue,
    config: StageConfig,
    run: StageRun | None,
    runs: Iterable[StageRun],
    completed: CompletedStore,
    name: str,
    room: Room,
) -> Go | Wait:
    """A stage of a listed issue (docs/architecture.md §3: exact state match)."""
    if issue.state != config.when.state:
        return Wait(Why.NOT_ITS_STATE)
    if run is not None and not (run.status.terminal and run.rerun_allowed):
        return Wait(Why.ALREADY)
    if completed.holds(issue.id, name, issue.state):
        return Wait(Why.COMPLETED)
    busy = stages_of_another_state(runs, issue.id, issue.state)
    if busy:
        return Wait(Why.OTHER_STATE, waiting_text(busy))
    if room.no_slot(issue.id):
        return Wait(Why.NO_SLOT)
    return _placed(issue.id, config, room)


def _placed(issue_id: str, config: StageConfig, room: Room) -> Go | Wait:
    if room.rate_held(config):
        return Wait(Why.RATE_LIMITED)
    ready, host = room.host_for(issue_id)
    if not ready:
        return Wait(Why.NO_HOST)
    return Go(config, host)
