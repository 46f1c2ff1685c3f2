"""A scripted engine: fixed issues, sessions and records, no processes.

It satisfies the same `Engine` protocol as the Supervisor, so the real app renders it. Used by
the SVG snapshot tests (with a FrozenClock, every pixel is deterministic) and for README
screenshots: `python -m vik_tui.ui.scripted busy`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vik_tui.config.schema import Workflow

Listener = Callable[[dict[str, Any]], None]
NOW = "2026-01-15T12:00:00Z"
ROOT = "/home/dev/project/.vik/workflows/-home-dev-project-workflow.yml"


def _at(clock: str) -> str:
    return f"2026-01-15T{clock}Z"


def _workflow(stages: list[str]) -> Workflow:
    states = {"plan": "todo", "implement": "in_progress", "review": "in_review"}
    return Workflow.model_validate(
        {
            "agents": {"codex": {"runtime": "codex", "model": "gpt-5.5"}},
            "issues": {"pull": {"command": "cat issues.json"}},
            "issue": {
                "stages": {s: {"when": {"state": states.get(s, s)}, "agent": "codex", "prompt": "x"} for s in stages}
            },
        }
    )


class ScriptedEngine:
    """Serves a fixed snapshot and fixed session records; commands are only recorded."""

    def __init__(
        self,
        snapshot: dict[str, Any],
        records: dict[str, list[dict[str, Any]]] | None = None,
        events: list[dict[str, Any]] | None = None,
        stages: list[str] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self.records = records or {}
        self.events = events or []
        self.workflow = _workflow(stages or ["plan", "implement", "review"])
        self.workflow_path = Path("/home/dev/project/workflow.yml")
        self.calls: list[tuple[str, ...]] = []
        self._listeners: list[Listener] = []
        self._stopped = asyncio.Event()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: dict[str, Any]) -> None:
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

    def pause(self) -> None:
        self.calls.append(("pause",))
        self._snapshot["intake"].update(paused=True, status="paused", next_poll_in=None)

    def resume(self) -> None:
        self.calls.append(("resume",))
        self._snapshot["intake"].update(paused=False, status="idle")

    def stop(self) -> None:
        self.calls.append(("stop",))
        self._stopped.set()

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot

    def workdir_of(self, issue_id: str) -> Path:
        return Path(ROOT) / "issues" / issue_id

    def session_records(self, session_file: str, limit: int | None = None) -> list[dict[str, Any]]:
        records = self.records.get(session_file, [])
        return records[-limit:] if limit else list(records)

    def load_history(self) -> int:
        return 0


# -- building blocks ---------------------------------------------------------------------------
def session(
    issue: str,
    stage: str,
    attempt: int,
    seq: int,
    state: str,
    started: str | None,
    ended: str | None = None,
    tokens: tuple[int, int] = (0, 0),
    pid: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    uuid = f"019bc2a0-0000-7000-8000-{seq:012d}"
    return {
        "issue_id": issue,
        "stage": stage,
        "attempt": attempt,
        "session_uuid": uuid,
        "session_file": f"{ROOT}/sessions/{issue}/{stage}-{uuid}.jsonl",
        "state": state,
        "agent_session_id": None,
        "pid": pid,
        "started_at": _at(started) if started else None,
        "last_event_at": None,
        "ended_at": _at(ended) if ended else None,
        "last_message": None,
        "tools_in_flight": {},
        "tokens": {"input": tokens[0], "output": tokens[1], "cache_read": 0},
        "rate_limits": {},
        "reason": reason,
        "exit_code": None if state in ("running", "starting") else (0 if state == "completed" else 1),
        "signal": None,
        "stop_cause": None,
        "events": 0,
    }


def run(
    stage: str, status: str, sessions: list[dict[str, Any]], retry_in: float | None = None, reason: str | None = None
) -> dict[str, Any]:
    return {
        "issue": sessions[-1]["issue_id"] if sessions else "",
        "stage": stage,
        "status": status,
        "attempt": sessions[-1]["attempt"] if sessions else 1,
        "reason": reason,
        "gave_up": False,
        "retry_due_at": None,
        "retry_in": retry_in,
        "session": sessions[-1] if sessions else None,
        "history": sessions,
    }


def issue(issue_id: str, title: str, state: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": issue_id,
        "title": title,
        "state": state,
        "description": "",
        "listed": True,
        "extra": {},
        "stages": runs,
    }


def snapshot(
    issues: list[dict[str, Any]],
    *,
    status: str = "idle",
    next_poll_in: float | None = 3.0,
    running: int = 0,
    tokens: tuple[int, int] = (0, 0),
    rejected: list[dict[str, Any]] | None = None,
    rate_limits: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "workflow": "/home/dev/project/workflow.yml",
        "name": "project/workflow.yml",
        "intake": {
            "status": status,
            "error": error,
            "iterations": 3,
            "max_iterations": None,
            "paused": status == "paused",
            "next_poll_in": next_poll_in,
        },
        "running": running,
        "max_issue_concurrency": 4,
        "tokens": {"input": tokens[0], "output": tokens[1], "cache_read": 0},
        "rate_limits": rate_limits or {},
        "issues": issues,
        "rejected": rejected or [],
        "retries": [],
        "layout": {"root": ROOT, "sessions": f"{ROOT}/sessions", "logs": f"{ROOT}/logs"},
    }


def event(name: str, clock: str, level: str = "info", **fields: Any) -> dict[str, Any]:
    return {"event": name, "ts": _at(clock), "level": level, **fields}


def _conversation(issue_id: str, start: str) -> list[dict[str, Any]]:
    h, m, s = (int(x) for x in start.split(":"))

    def t(offset: int) -> str:
        total = h * 3600 + m * 60 + s + offset
        return _at(f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}.000")

    return [
        {"kind": "session_started", "session_id": "0199e0c4-7d1a", "model": "gpt-5.5", "ts": t(0)},
        {
            "kind": "message",
            "role": "reasoning",
            "ts": t(2),
            "text": "**Reading the failing test**\n\nThe flake is a fixed sleep waiting for the session cookie.",
        },
        {
            "kind": "message",
            "role": "assistant",
            "ts": t(4),
            "text": f"Looking at {issue_id}: I will run the login test a few times to reproduce the flake.",
        },
        {
            "kind": "tool_call",
            "call_id": "c1",
            "name": "shell",
            "status": "started",
            "ts": t(5),
            "input": "pytest tests/integration/test_login.py -x -q --count 5",
        },
        {
            "kind": "tool_call",
            "call_id": "c1",
            "name": "shell",
            "status": "failed",
            "exit_code": 1,
            "ts": t(19),
            "input": "pytest tests/integration/test_login.py -x -q --count 5",
            "output": "....F\nFAILED test_login.py::test_cookie_set - AssertionError: no session cookie\n"
            "1 failed, 4 passed in 12.41s\n=== short test summary info ===\nE   assert None is not None\n",
        },
        {
            "kind": "message",
            "role": "assistant",
            "ts": t(24),
            "text": "Reproduced (1 in 5). Replacing `time.sleep(0.5)` with a wait on the login response.",
        },
        {
            "kind": "tool_call",
            "call_id": "c2",
            "name": "edit",
            "status": "completed",
            "ts": t(31),
            "input": "update tests/integration/test_login.py",
        },
        {
            "kind": "tool_call",
            "call_id": "c3",
            "name": "shell",
            "status": "started",
            "ts": t(33),
            "input": "pytest tests/integration/test_login.py -q --count 20",
        },
        {
            "kind": "tool_call",
            "call_id": "c3",
            "name": "shell",
            "status": "completed",
            "exit_code": 0,
            "ts": t(58),
            "input": "pytest tests/integration/test_login.py -q --count 20",
            "output": "....................\n20 passed in 24.87s\n",
        },
        {
            "kind": "error",
            "fatal": False,
            "ts": t(60),
            "message": "Reconnecting... 2/5 (stream disconnected before completion)",
        },
        {
            "kind": "message",
            "role": "assistant",
            "ts": t(66),
            "text": "20 of 20 runs pass now. Writing a short note on the change for the review stage.",
        },
        {
            "kind": "tool_call",
            "call_id": "c4",
            "name": "shell",
            "status": "started",
            "ts": t(70),
            "input": "git diff --stat",
        },
    ]


def _failed_run(issue_id: str, start: str) -> list[dict[str, Any]]:
    base = _conversation(issue_id, start)[:5]
    return [
        *base,
        {
            "kind": "error",
            "fatal": True,
            "ts": _at("11:59:31.000"),
            "message": "model refused: context window exceeded",
        },
        {
            "kind": "outcome",
            "state": "failed",
            "reason": "model refused: context window exceeded",
            "exit_code": 1,
            "tokens": {"input": 18200, "output": 950},
            "ts": _at("11:59:31.100"),
        },
    ]


# -- scenarios ---------------------------------------------------------------------------------
def idle_engine() -> ScriptedEngine:
    """Nothing to do yet: the tracker returned no issues."""
    return ScriptedEngine(
        snapshot([], status="idle", next_poll_in=3.0),
        events=[event("intake", "11:59:57", issues=0, rejected=0, iteration=3)],
    )


def busy_engine() -> ScriptedEngine:
    """Four issues: one streaming, one done, one waiting for a slot, one rejected id."""
    run12 = session("ENG-12", "plan", 1, 1, "completed", "11:52:02", "11:54:40", (12400, 2100))
    impl12 = session("ENG-12", "implement", 1, 4, "running", "11:58:48", tokens=(31800, 4150), pid=4242)
    plan13 = session("ENG-13", "plan", 1, 2, "completed", "11:50:10", "11:51:30", (9100, 1200))
    impl13 = session("ENG-13", "implement", 1, 3, "completed", "11:51:40", "11:57:05", (40200, 6800))
    rev13 = session("ENG-13", "review", 1, 5, "running", "11:59:20", tokens=(5200, 310), pid=4251)
    issues = [
        issue(
            "ENG-12",
            "Stabilise the login integration test",
            "in_progress",
            [run("plan", "completed", [run12]), run("implement", "running", [impl12])],
        ),
        issue(
            "ENG-13",
            "Fix off-by-one in /api/orders pagination",
            "in_review",
            [
                run("plan", "completed", [plan13]),
                run("implement", "completed", [impl13]),
                run("review", "running", [rev13]),
            ],
        ),
        issue(
            "ENG-14",
            "Document the REST API error codes",
            "todo",
            [run("plan", "preparing", [session("ENG-14", "plan", 1, 6, "starting", None)])],
        ),
        issue("ENG-15", "Switch request logging to structured JSON", "backlog", []),
    ]
    rejected = [{"index": 4, "id": "../etc", "reason": "issue id '../etc' is not a safe path segment"}]
    records = {impl12["session_file"]: _conversation("ENG-12", "11:58:48")}
    events = [
        event("intake", "11:52:00", issues=4, rejected=1, iteration=1),
        event(
            "issue_rejected",
            "11:52:00",
            "warning",
            id="../etc",
            index=4,
            reason="issue id '../etc' is not a safe path segment",
        ),
        event(
            "stage_started",
            "11:58:48",
            issue="ENG-12",
            stage="implement",
            attempt=1,
            pid=4242,
            session_file=impl12["session_file"],
        ),
        event(
            "stage_finished",
            "11:57:05",
            issue="ENG-13",
            stage="implement",
            attempt=1,
            state="completed",
            reason="completed",
            exit_code=0,
            tokens={"input": 40200, "output": 6800},
        ),
        event(
            "stage_started",
            "11:59:20",
            issue="ENG-13",
            stage="review",
            attempt=1,
            pid=4251,
            session_file=rev13["session_file"],
        ),
    ]
    return ScriptedEngine(
        snapshot(
            issues,
            status="idle",
            next_poll_in=3.0,
            running=3,
            tokens=(98700, 14560),
            rejected=rejected,
            rate_limits={"primary": {"scope": "primary", "used_percent": 42.0}},
        ),
        records=records,
        events=[e for e in events if e["event"] != "stage_finished"],
    )


def failure_engine() -> ScriptedEngine:
    """A stage failed and waits 12 s to retry; another gave up after its last attempt."""
    failed = session(
        "ENG-21",
        "plan",
        1,
        1,
        "failed",
        "11:59:03",
        "11:59:31",
        (18200, 950),
        reason="model refused: context window exceeded",
    )
    gave1 = session(
        "ENG-22",
        "plan",
        1,
        2,
        "failed",
        "11:55:00",
        "11:55:40",
        (4000, 300),
        reason="exited with code 3; stderr: fatal: something broke badly",
    )
    gave2 = session(
        "ENG-22",
        "plan",
        2,
        3,
        "failed",
        "11:56:00",
        "11:56:30",
        (4100, 280),
        reason="exited with code 3; stderr: fatal: something broke badly",
    )
    issues = [
        issue(
            "ENG-21",
            "Retry webhook deliveries with exponential backoff",
            "todo",
            [run("plan", "retry_wait", [failed], retry_in=12.0, reason="model refused: context window exceeded")],
        ),
        issue(
            "ENG-22",
            "Add a --dry-run flag to the sync command",
            "todo",
            [run("plan", "failed", [gave1, gave2], reason="exited with code 3")],
        ),
    ]
    records = {failed["session_file"]: _failed_run("ENG-21", "11:59:03")}
    events = [
        event("intake", "11:59:00", issues=2, rejected=0, iteration=2),
        event(
            "retry_given_up", "11:56:30", "error", issue="ENG-22", stage="plan", attempts=2, reason="exited with code 3"
        ),
        event(
            "stage_started",
            "11:59:03",
            issue="ENG-21",
            stage="plan",
            attempt=1,
            pid=5120,
            session_file=failed["session_file"],
        ),
        event(
            "hook_finished",
            "11:59:31",
            "info",
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
        event(
            "retry_scheduled",
            "11:59:31",
            issue="ENG-21",
            stage="plan",
            attempt=2,
            delay_sec=15.0,
            due_at=_at("11:59:46"),
        ),
    ]
    return ScriptedEngine(
        snapshot(
            issues,
            status="error",
            error="pull command exited with code 1: tracker timeout",
            next_poll_in=3.0,
            tokens=(26300, 1530),
        ),
        records=records,
        events=events,
    )


SCENARIOS = {"idle": idle_engine, "busy": busy_engine, "failure": failure_engine}


def main(argv: list[str] | None = None) -> int:
    from vik_tui.ui.app import VikApp
    from vik_tui.ui.clock import FrozenClock

    name = (argv or sys.argv[1:] or ["busy"])[0]
    app = VikApp(SCENARIOS[name](), clock=FrozenClock(NOW), bell=False)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
