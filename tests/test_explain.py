"""`explain(view, issue_id)`: one reason, as a code and a sentence, for every case of #21, over
views shaped as the Supervisor builds them (`python tests/test_explain.py` prints them all)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from vik_tui.engine.explain import explain
from vik_tui.engine.view import (
    EngineView,
    ExplainCode,
    HoldKind,
    HoldView,
    HostView,
    IntakeStatus,
    IntakeView,
    IssueView,
    RejectedView,
    RunStatus,
    RunView,
    SessionView,
    StageSpec,
)

SPECS = (StageSpec("plan", "todo", "codex"), StageSpec("review", "review", "claude_code"))
SOON = (datetime.now(UTC) + timedelta(minutes=20)).isoformat(timespec="seconds").replace("+00:00", "Z")


def issue(issue_id: str = "A-1", state: str = "todo", *runs: RunView, listed: bool = True) -> IssueView:
    return IssueView(id=issue_id, title="t", state=state, runs=runs, listed=listed)


def run(status: RunStatus, stage: str = "plan", **kw: object) -> RunView:
    return RunView(issue_id="A-1", stage=stage, status=status, **kw)  # type: ignore[arg-type]


def view(*issues: IssueView, **kw: object) -> EngineView:
    base: dict[str, object] = {
        "workflow": "/w/workflow.yml",
        "name": "w/workflow.yml",
        "intake": IntakeView(status=IntakeStatus.IDLE, iterations=3),
        "stages": ("plan", "review"),
        "stage_states": frozenset({"todo", "review"}),
        "max_issue_concurrency": 5,
        "issues": issues,
        "stage_specs": SPECS,
    }
    base.update(kw)
    return EngineView(**base)  # type: ignore[arg-type]


SESSION = SessionView("A-1", "plan", 2, "u", "/s/plan-u.jsonl", pid=4242)

CASES: list[tuple[ExplainCode, EngineView, str]] = [
    (
        ExplainCode.RUNNING,
        view(issue("A-1", "todo", run(RunStatus.RUNNING, attempt=2, history=(SESSION,)))),
        "plan is running (attempt 2, pid 4242)",
    ),
    (
        ExplainCode.NO_STAGE,
        view(issue("A-1", "backlog")),
        "no stage runs for state `backlog` (stages run for: review, todo)",
    ),
    (
        ExplainCode.WAITING_FOR_SLOT,
        view(issue(), running=5),
        "waiting for a slot: max_issue_concurrency 5 of 5 running",
    ),
    (
        ExplainCode.RETRY_WAIT,
        view(
            issue(
                "A-1",
                "todo",
                run(RunStatus.RETRY_WAIT, attempt=2, retry_in=42.0, retry_due_at=SOON, reason="exited with code 1"),
            )
        ),
        "plan retry #3 due in 42 s",
    ),
    (
        ExplainCode.GAVE_UP,
        view(issue("A-1", "todo", run(RunStatus.FAILED, attempt=3, gave_up=True, reason="model refused"))),
        "plan gave up after 3 attempts: model refused",
    ),
    (
        ExplainCode.PAUSED,
        view(issue(), intake=IntakeView(status=IntakeStatus.PAUSED, paused=True, iterations=3)),
        "intake is paused",
    ),
    (ExplainCode.DRAINING, view(issue(), draining=True), "draining: no new stage starts"),
    (ExplainCode.STOPPING, view(issue(), stopping=True), "the supervisor is stopping"),
    (
        ExplainCode.REJECTED,
        view(rejected=(RejectedView(index=3, id="A-1", reason="missing `title`"),)),
        "rejected by intake: missing `title`",
    ),
    (
        ExplainCode.HOST_UNAVAILABLE,
        view(issue(), hosts=(HostView("build-1", 2, 2, True), HostView("build-2", 0, 2, False, "Connection refused"))),
        "every SSH host is full or down (build-1 2/2 busy; build-2 down: Connection refused)",
    ),
    (
        ExplainCode.BUDGET_SPENT,
        view(
            issue(),
            holds=(
                HoldView(
                    HoldKind.BUDGET,
                    "daily",
                    SOON,
                    1200.0,
                    "daily token budget spent: 1204330 of 1000000 tokens today (UTC)",
                ),
            ),
        ),
        "daily token budget spent: 1204330 of 1000000 tokens today (UTC); plan starts at",
    ),
    (
        ExplainCode.RATE_LIMITED,
        view(issue(), holds=(HoldView(HoldKind.RATE_LIMIT, "codex", SOON, 1200.0, "codex.primary limit reached"),)),
        "codex is rate-limited until",
    ),
    (
        ExplainCode.COMPLETED,
        view(issue("A-1", "todo", run(RunStatus.COMPLETED))),
        "plan completed; waiting for the tracker to move (still `todo`)",
    ),
    (
        ExplainCode.FAILED,
        view(issue("A-1", "todo", run(RunStatus.FAILED, reason="budget: 5100 tokens > 5000"))),
        "plan failed: budget: 5100 tokens > 5000; not retried",
    ),
    (
        ExplainCode.CANCELLED,
        view(issue("A-1", "todo", run(RunStatus.CANCELLED, reason="cancelled by user"))),
        "plan was cancelled",
    ),
    (
        ExplainCode.NOT_LISTED,
        view(issue("A-1", "todo", run(RunStatus.COMPLETED), listed=False)),
        "no longer in the tracker's list",
    ),
    (ExplainCode.NOT_PULLED_YET, view(intake=IntakeView()), "the tracker has not been pulled yet"),
    (ExplainCode.UNKNOWN, view(), "no issue 'A-1' in the tracker's last pull"),
    (ExplainCode.READY, view(issue()), "plan starts at the next dispatch"),
    (
        ExplainCode.WAITING_FOR_STAGE,
        view(
            dataclasses.replace(
                issue("A-1", "review", run(RunStatus.COMPLETED, stage="plan")),
                waiting="waiting for plan to finish",
            )
        ),
        "waiting for plan to finish",
    ),
]


@pytest.mark.parametrize(("code", "state", "words"), CASES, ids=[c[0].value for c in CASES])
def test_each_reason_has_its_code_and_words(code: ExplainCode, state: EngineView, words: str) -> None:
    said = explain(state, "A-1")
    assert said.code == code, said
    assert words in said.words, said.words
    assert said.issue_id == "A-1"


def test_every_code_is_covered() -> None:
    covered = {case[0] for case in CASES}
    assert covered == set(ExplainCode)


def test_a_rerun_after_the_issue_came_back_is_not_called_completed() -> None:
    came_back = view(issue("A-1", "todo", run(RunStatus.COMPLETED, rerun_allowed=True)))
    assert explain(came_back, "A-1").code == ExplainCode.READY


def test_the_most_decisive_reason_wins() -> None:
    """A drain outranks a spent budget and a full house; a retry says it waits for the rate limit."""
    busy = view(
        issue(),
        running=5,
        draining=True,
        holds=(HoldView(HoldKind.BUDGET, "daily", SOON, 10.0, "spent"),),
    )
    assert explain(busy, "A-1").code == ExplainCode.DRAINING
    assert explain(dataclasses.replace(busy, draining=False), "A-1").code == ExplainCode.BUDGET_SPENT
    limited = view(
        issue("A-1", "todo", run(RunStatus.RETRY_WAIT, attempt=1, retry_in=300.0, retry_due_at=SOON)),
        holds=(HoldView(HoldKind.RATE_LIMIT, "codex", SOON, 300.0, "429"),),
    )
    assert "after the codex rate limit resets" in explain(limited, "A-1").words
    other_runtime = view(issue("A-1", "review"), holds=(HoldView(HoldKind.RATE_LIMIT, "codex", SOON, 300.0, "429"),))
    assert explain(other_runtime, "A-1").code == ExplainCode.READY  # claude_code is not held by codex's limit


if __name__ == "__main__":
    for _code, state, _ in CASES:
        said = explain(state, "A-1")
        print(f"{said.code.value:18} {said.words}")
