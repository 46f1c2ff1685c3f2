"""A scripted engine for the UI tests: fixed issues, sessions and records, no processes.

It satisfies the same `Engine` protocol as the Supervisor and serves the real view and event
types (`EngineView`, engine events, agent events), so the real app renders it and it cannot
drift from the engine's contract. Used by the SVG snapshot tests (with a FrozenClock, every
pixel is deterministic); to look at a scenario in a terminal, from the repository root:

    python tests/scripted_engine.py busy      # or idle, failure, retries, attention
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vik_tui.agents import events as ev
from vik_tui.engine import engine_events as ee
from vik_tui.engine.view import (
    EngineView,
    HostView,
    IntakeStatus,
    IntakeView,
    IssueView,
    RateLimitView,
    Refused,
    RejectedView,
    RetryView,
    RunStatus,
    RunView,
    SessionState,
    SessionView,
    StageSpec,
    Terminal,
    Tokens,
)

NOW = "2026-01-15T12:00:00Z"
ROOT = "/home/dev/project/.vik/workflows/-home-dev-project-workflow.yml"


def _at(clock: str) -> str:
    return f"2026-01-15T{clock}Z"


class ScriptedEngine:
    """Serves a fixed snapshot and fixed session records; commands are only recorded."""

    def __init__(
        self,
        snapshot: EngineView,
        records: dict[str, list[ev.AgentEvent]] | None = None,
        events: list[ee.EngineEvent] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self.records = records or {}
        self.events = events or []
        self.workflow_path = Path("/home/dev/project/workflow.yml")
        self.before_first_dispatch: Callable[[], Awaitable[None]] | None = None  # set by the app
        self.calls: list[tuple[str, ...]] = []
        self._listeners: list[ee.Listener] = []
        self._stopped = asyncio.Event()

    def subscribe(self, listener: ee.Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: ee.EngineEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    async def run(self) -> int:
        for event in self.events:
            self.emit(event)
        await self._stopped.wait()
        return 0

    def cancel(self, issue_id: str, stage: str) -> str:
        self.calls.append(("cancel", issue_id, stage))
        return "cancelling"

    def retry(self, issue_id: str, stage: str) -> str:
        self.calls.append(("retry", issue_id, stage))
        return "retrying"

    def poll_now(self) -> None:
        self.calls.append(("poll_now",))

    def _intake(self, **changes: Any) -> None:
        intake = dataclasses.replace(self._snapshot.intake, **changes)
        self._snapshot = dataclasses.replace(self._snapshot, intake=intake)

    def pause(self) -> None:
        self.calls.append(("pause",))
        self._intake(paused=True, status=IntakeStatus.PAUSED, next_poll_in=None)

    def resume(self) -> None:
        self.calls.append(("resume",))
        self._intake(paused=False, status=IntakeStatus.IDLE)
        self._snapshot = dataclasses.replace(self._snapshot, draining=False)

    def drain(self) -> str:
        self.calls.append(("drain",))
        self._snapshot = dataclasses.replace(self._snapshot, draining=True)
        return f"draining: {self._snapshot.active_run_count} running"

    def stop(self) -> None:
        self.calls.append(("stop",))
        self._stopped.set()

    def snapshot(self) -> EngineView:
        return self._snapshot

    def workdir_of(self, issue_id: str) -> Path:
        return Path(ROOT) / "issues" / issue_id

    def workspace_path(self, issue_id: str) -> str | Refused:
        return str(self.workdir_of(issue_id))

    async def shell_plan(self, issue_id: str) -> Terminal | Refused:
        self.calls.append(("shell_plan", issue_id))
        return Refused(f"the workspace does not exist yet: {self.workdir_of(issue_id)}")

    async def workspace_diff(self, issue_id: str) -> str:
        self.calls.append(("workspace_diff", issue_id))
        return f"(workspace {self.workdir_of(issue_id)} does not exist yet)"

    async def takeover_plan(self, issue_id: str, session_uuid: str) -> Terminal | Refused:
        self.calls.append(("takeover_plan", issue_id, session_uuid))
        return Refused(f"{issue_id}: the scripted engine runs no agents")

    async def session_records(self, session_file: str, limit: int | None = None) -> list[ev.AgentEvent]:
        records = self.records.get(session_file, [])
        return records[-limit:] if limit else list(records)

    async def load_history(self) -> int:
        return 0


# -- building blocks ---------------------------------------------------------------------------
def session(
    issue: str,
    stage: str,
    attempt: int,
    seq: int,
    state: SessionState,
    started: str | None,
    ended: str | None = None,
    tokens: tuple[int, int] = (0, 0),
    pid: int | None = None,
    reason: str | None = None,
) -> SessionView:
    uuid = f"019bc2a0-0000-7000-8000-{seq:012d}"
    return SessionView(
        issue_id=issue,
        stage=stage,
        attempt=attempt,
        session_uuid=uuid,
        session_file=f"{ROOT}/sessions/{issue}/{stage}-{uuid}.jsonl",
        state=state,
        pid=pid,
        started_at=_at(started) if started else None,
        ended_at=_at(ended) if ended else None,
        tokens=Tokens(input=tokens[0], output=tokens[1]),
        reason=reason,
        exit_code=None if state.live else (0 if state == SessionState.COMPLETED else 1),
    )


def run(
    stage: str, status: RunStatus, sessions: list[SessionView], retry_in: float | None = None, reason: str | None = None
) -> RunView:
    return RunView(
        issue_id=sessions[-1].issue_id if sessions else "",
        stage=stage,
        status=status,
        attempt=sessions[-1].attempt if sessions else 1,
        reason=reason,
        retry_in=retry_in,
        history=tuple(sessions),
    )


def issue(issue_id: str, title: str, state: str, runs: list[RunView]) -> IssueView:
    return IssueView(id=issue_id, title=title, state=state, runs=tuple(runs))


def snapshot(
    issues: list[IssueView],
    *,
    status: IntakeStatus = IntakeStatus.IDLE,
    next_poll_in: float | None = 3.0,
    running: int = 0,
    tokens: tuple[int, int] = (0, 0),
    rejected: list[RejectedView] | None = None,
    rate_limits: dict[str, RateLimitView] | None = None,
    error: str | None = None,
    stages: tuple[str, ...] = ("plan", "implement", "review"),
    retries: list[RetryView] | None = None,
) -> EngineView:
    return EngineView(
        workflow="/home/dev/project/workflow.yml",
        name="project/workflow.yml",
        intake=IntakeView(
            status=status,
            error=error,
            iterations=3,
            paused=status == IntakeStatus.PAUSED,
            next_poll_in=next_poll_in,
        ),
        stages=stages,
        running=running,
        max_issue_concurrency=4,
        tokens=Tokens(input=tokens[0], output=tokens[1]),
        rate_limits=rate_limits or {},
        issues=tuple(issues),
        rejected=tuple(rejected or ()),
        retries=tuple(retries or ()),
        stage_states=frozenset({"todo", "in_progress", "in_review"}),
        stage_specs=tuple(StageSpec(name, STAGE_STATES.get(name, "todo"), "codex") for name in stages),
    )


STAGE_STATES = {"plan": "todo", "implement": "in_progress", "review": "in_review"}


def _conversation(issue_id: str, start: str) -> list[ev.AgentEvent]:
    h, m, s = (int(x) for x in start.split(":"))

    def t(offset: int) -> str:
        total = h * 3600 + m * 60 + s + offset
        return _at(f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}.000")

    login_test = "pytest tests/integration/test_login.py -x -q --count 5"
    return [
        ev.SessionStarted(session_id="0199e0c4-7d1a", model="gpt-5.5", ts=t(0)),
        ev.Message(
            role="reasoning",
            ts=t(2),
            text="**Reading the failing test**\n\nThe flake is a fixed sleep waiting for the session cookie.",
        ),
        ev.Message(
            ts=t(4), text=f"Looking at {issue_id}: I will run the login test a few times to reproduce the flake."
        ),
        ev.ToolCall(call_id="c1", name="shell", status="started", ts=t(5), input=login_test),
        ev.ToolCall(
            call_id="c1",
            name="shell",
            status="failed",
            exit_code=1,
            ts=t(19),
            input=login_test,
            output="....F\nFAILED test_login.py::test_cookie_set - AssertionError: no session cookie\n"
            "1 failed, 4 passed in 12.41s\n=== short test summary info ===\nE   assert None is not None\n",
        ),
        ev.Message(
            ts=t(24), text="Reproduced (1 in 5). Replacing `time.sleep(0.5)` with a wait on the login response."
        ),
        ev.ToolCall(
            call_id="c2", name="edit", status="completed", ts=t(31), input="update tests/integration/test_login.py"
        ),
        ev.ToolCall(
            call_id="c3",
            name="shell",
            status="started",
            ts=t(33),
            input="pytest tests/integration/test_login.py -q --count 20",
        ),
        ev.ToolCall(
            call_id="c3",
            name="shell",
            status="completed",
            exit_code=0,
            ts=t(58),
            input="pytest tests/integration/test_login.py -q --count 20",
            output="....................\n20 passed in 24.87s\n",
        ),
        ev.Error(fatal=False, ts=t(60), detail="Reconnecting... 2/5 (stream disconnected before completion)"),
        ev.Message(ts=t(66), text="20 of 20 runs pass now. Writing a short note on the change for the review stage."),
        ev.ToolCall(call_id="c4", name="shell", status="started", ts=t(70), input="git diff --stat"),
    ]


def _failed_run(issue_id: str, start: str) -> list[ev.AgentEvent]:
    return [
        *_conversation(issue_id, start)[:5],
        ev.Error(fatal=True, ts=_at("11:59:31.000"), detail="model refused: context window exceeded"),
        ev.Outcome(
            state="failed",
            reason="model refused: context window exceeded",
            exit_code=1,
            tokens={"input": 18200, "output": 950},
            ts=_at("11:59:31.100"),
        ),
    ]


# -- scenarios ---------------------------------------------------------------------------------
def idle_engine() -> ScriptedEngine:
    """Nothing to do yet: the tracker returned no issues."""
    return ScriptedEngine(
        snapshot([], status=IntakeStatus.IDLE, next_poll_in=3.0),
        events=[ee.Intake(ts=_at("11:59:57"), issues=0, rejected=0, iteration=3)],
    )


def busy_engine() -> ScriptedEngine:
    """Four issues: one streaming, one done, one waiting for a slot, one rejected id."""
    done, running, starting = SessionState.COMPLETED, SessionState.RUNNING, SessionState.STARTING
    run12 = session("ENG-12", "plan", 1, 1, done, "11:52:02", "11:54:40", (12400, 2100))
    impl12 = session("ENG-12", "implement", 1, 4, running, "11:58:48", tokens=(31800, 4150), pid=4242)
    plan13 = session("ENG-13", "plan", 1, 2, done, "11:50:10", "11:51:30", (9100, 1200))
    impl13 = session("ENG-13", "implement", 1, 3, done, "11:51:40", "11:57:05", (40200, 6800))
    rev13 = session("ENG-13", "review", 1, 5, running, "11:59:20", tokens=(5200, 310), pid=4251)
    issues = [
        issue(
            "ENG-12",
            "Stabilise the login integration test",
            "in_progress",
            [run("plan", RunStatus.COMPLETED, [run12]), run("implement", RunStatus.RUNNING, [impl12])],
        ),
        issue(
            "ENG-13",
            "Fix off-by-one in /api/orders pagination",
            "in_review",
            [
                run("plan", RunStatus.COMPLETED, [plan13]),
                run("implement", RunStatus.COMPLETED, [impl13]),
                run("review", RunStatus.RUNNING, [rev13]),
            ],
        ),
        issue(
            "ENG-14",
            "Document the REST API error codes",
            "todo",
            [run("plan", RunStatus.PREPARING, [session("ENG-14", "plan", 1, 6, starting, None)])],
        ),
        issue("ENG-15", "Switch request logging to structured JSON", "backlog", []),
    ]
    reason = "issue id '../etc' is not a safe path segment"
    rejected = [RejectedView(index=4, id="../etc", reason=reason)]
    records = {impl12.session_file: _conversation("ENG-12", "11:58:48")}
    events: list[ee.EngineEvent] = [
        ee.Intake(ts=_at("11:52:00"), issues=4, rejected=1, iteration=1),
        ee.IssueRejected(ts=_at("11:52:00"), id="../etc", index=4, reason=reason),
        ee.StageStarted(
            ts=_at("11:58:48"),
            issue="ENG-12",
            stage="implement",
            attempt=1,
            pid=4242,
            session_file=impl12.session_file,
        ),
        ee.StageStarted(
            ts=_at("11:59:20"),
            issue="ENG-13",
            stage="review",
            attempt=1,
            pid=4251,
            session_file=rev13.session_file,
        ),
    ]
    return ScriptedEngine(
        snapshot(
            issues,
            status=IntakeStatus.IDLE,
            next_poll_in=3.0,
            running=3,
            tokens=(98700, 14560),
            rejected=rejected,
            rate_limits={"primary": RateLimitView(scope="primary", used_percent=42.0)},
        ),
        records=records,
        events=events,
    )


def failure_engine() -> ScriptedEngine:
    """A stage failed and waits 12 s to retry; another gave up after its last attempt."""
    failed_state = SessionState.FAILED
    refused = "model refused: context window exceeded"
    broke = "exited with code 3; stderr: fatal: something broke badly"
    failed = session("ENG-21", "plan", 1, 1, failed_state, "11:59:03", "11:59:31", (18200, 950), reason=refused)
    gave1 = session("ENG-22", "plan", 1, 2, failed_state, "11:55:00", "11:55:40", (4000, 300), reason=broke)
    gave2 = session("ENG-22", "plan", 2, 3, failed_state, "11:56:00", "11:56:30", (4100, 280), reason=broke)
    issues = [
        issue(
            "ENG-21",
            "Retry webhook deliveries with exponential backoff",
            "todo",
            [run("plan", RunStatus.RETRY_WAIT, [failed], retry_in=12.0, reason=refused)],
        ),
        issue(
            "ENG-22",
            "Add a --dry-run flag to the sync command",
            "todo",
            [run("plan", RunStatus.FAILED, [gave1, gave2], reason="exited with code 3")],
        ),
    ]
    records = {failed.session_file: _failed_run("ENG-21", "11:59:03")}
    events: list[ee.EngineEvent] = [
        ee.Intake(ts=_at("11:59:00"), issues=2, rejected=0, iteration=2),
        ee.RetryGivenUp(ts=_at("11:56:30"), issue="ENG-22", stage="plan", attempts=2, reason="exited with code 3"),
        ee.StageStarted(
            ts=_at("11:59:03"),
            issue="ENG-21",
            stage="plan",
            attempt=1,
            pid=5120,
            session_file=failed.session_file,
        ),
        ee.HookFinished(
            ts=_at("11:59:31"),
            issue="ENG-21",
            stage="plan",
            hook="after_run",
            ok=True,
            exit_code=0,
            timed_out=False,
            error=None,
            stdout_tail="",
            stderr_tail="",
        ),
        ee.RetryScheduled(
            ts=_at("11:59:31"), issue="ENG-21", stage="plan", attempt=2, delay_sec=15.0, due_at=_at("11:59:46")
        ),
    ]
    return ScriptedEngine(
        snapshot(
            issues,
            status=IntakeStatus.ERROR,
            error="pull command exited with code 1: tracker timeout",
            next_poll_in=3.0,
            tokens=(26300, 1530),
            retries=[RetryView("ENG-21", "plan", 1, _at("11:59:46"), 12.0, refused)],
        ),
        records=records,
        events=events,
    )


def retries_engine() -> ScriptedEngine:
    """One issue retried by hand (`r`) and back in its state again: 11 sessions, 3 stages.
    Tabs are numbered per stage from the session files (plan #1..#4), never repeated; at 80
    columns the tab row shows what it hides on each side."""
    done, failed, running = SessionState.COMPLETED, SessionState.FAILED, SessionState.RUNNING
    plans = [
        session("ENG-30", "plan", 1, n, failed if n < 4 else done, f"11:{40 + n}:00", f"11:{40 + n}:30")
        for n in range(1, 5)
    ]
    impls = [
        session("ENG-30", "implement", 1, 4 + n, failed, f"11:{44 + n}:00", f"11:{44 + n}:40", reason="tests failed")
        for n in range(1, 5)
    ]
    reviews = [session("ENG-30", "review", 1, 8 + n, done, f"11:{50 + n}:00", f"11:{50 + n}:20") for n in range(1, 3)]
    last = session("ENG-30", "implement", 1, 11, running, "11:59:00", tokens=(1200, 300), pid=6100)
    issues = [
        issue(
            "ENG-30",
            "Make the importer resumable after a crash",
            "in_progress",
            [
                run("plan", RunStatus.COMPLETED, plans),
                run("implement", RunStatus.RUNNING, [*impls, last]),
                run("review", RunStatus.COMPLETED, reviews),
            ],
        ),
        issue("ENG-31", "Drop the legacy CSV exporter", "todo", []),
    ]
    records = {last.session_file: _conversation("ENG-30", "11:59:00")[:6]}
    return ScriptedEngine(snapshot(issues, running=1, tokens=(1200, 300)), records=records)


def attention_engine() -> ScriptedEngine:
    """Three stages failed at once (one toast says so), one of them gave up; the others streamed fine."""
    failed_state, done = SessionState.FAILED, SessionState.COMPLETED
    why = "exited with code 3; stderr: fatal: something broke badly"
    issues = []
    events: list[ee.EngineEvent] = [ee.Intake(ts=_at("11:59:00"), issues=5, rejected=1, iteration=2)]
    for n, issue_id in enumerate(("ENG-41", "ENG-42", "ENG-43")):
        s = session(issue_id, "plan", 1, 20 + n, failed_state, "11:58:00", "11:59:50", (900, 40), reason=why)
        issues.append(
            issue(
                issue_id,
                f"Failing piece of work number {n + 1}",
                "todo",
                [run("plan", RunStatus.FAILED, [s], reason=why)],
            )
        )
        events.append(
            ee.StageFinished(
                ts=_at("11:59:50"),
                level="error",
                issue=issue_id,
                stage="plan",
                attempt=1,
                state=RunStatus.FAILED,
                reason=why,
                exit_code=3,
                signal=None,
                tokens={"input": 900, "output": 40},
                session_file=s.session_file,
            )
        )
    ok = session("ENG-44", "plan", 1, 30, done, "11:50:00", "11:55:00", (5000, 700))
    issues.append(issue("ENG-44", "Finished fine", "todo", [run("plan", RunStatus.COMPLETED, [ok])]))
    issues.append(issue("ENG-45", "Not started: no stage for its state", "backlog", []))
    events.append(ee.RetryGivenUp(ts=_at("11:59:50"), issue="ENG-43", stage="plan", attempts=1, reason=why))
    rejected = [RejectedView(index=5, id=None, reason="record 5 has no `title`")]
    records = {s.session_file: _failed_run(s.issue_id, "11:58:00") for i in issues for s in i.sessions}
    return ScriptedEngine(snapshot(issues, tokens=(7700, 820), rejected=rejected), records=records, events=events)


def hosts_engine() -> ScriptedEngine:
    """The busy scenario on SSH workers: two hosts with a cap of 2, the second unreachable."""
    busy = busy_engine()
    pins = {"ENG-12": "build-1", "ENG-13": "build-1", "ENG-14": "build-2"}

    def on_host(view: IssueView) -> IssueView:
        host = pins.get(view.id)
        runs = tuple(
            dataclasses.replace(r, host=host, history=tuple(dataclasses.replace(s, host=host) for s in r.history))
            for r in view.runs
        )
        return dataclasses.replace(view, host=host, runs=runs)

    hosts = (
        HostView(name="build-1", running=2, cap=2, healthy=True, pinned=2),
        HostView(name="build-2", running=0, cap=2, healthy=False, error="Connection refused", pinned=1),
    )
    busy._snapshot = dataclasses.replace(
        busy._snapshot, issues=tuple(on_host(i) for i in busy._snapshot.issues), hosts=hosts
    )
    return busy


SCENARIOS: dict[str, Callable[[], ScriptedEngine]] = {
    "idle": idle_engine,
    "busy": busy_engine,
    "hosts": hosts_engine,
    "failure": failure_engine,
    "retries": retries_engine,
    "attention": attention_engine,
}


def main(argv: list[str] | None = None) -> int:
    from vik_tui.ui.app import VikApp
    from vik_tui.ui.clock import FrozenClock

    name = (argv or sys.argv[1:] or ["busy"])[0]
    if name not in SCENARIOS:
        print(f"scripted_engine: no scenario {name!r}; choose one of {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    app = VikApp(SCENARIOS[name](), clock=FrozenClock(NOW), bell=False)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
