"""Drain and explain from the outside: the HTTP API routes and the headless commands
(`vik-tui stop --drain`, `vik-tui explain ID`), against real supervisors and sockets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chaos_helpers import supervising, vik
from conftest import Project, base_workflow
from test_api_server import Served, call, serving, talking_workflow

from vik_tui.api.routes import url_for
from vik_tui.engine import engine_events as ee


# -- the API ---------------------------------------------------------------------------------------
@pytest.fixture
async def served(project: Project) -> AsyncIterator[Served]:
    async with serving(talking_workflow(project)) as s:
        await s.harness.wait_for(lambda: len(s.harness.named(ee.StageStarted)) == 2)
        yield s


async def test_explain_route_issue_body_and_drain_route(served: Served) -> None:
    async with served.unix_session() as session:
        status, body = await call(session, "GET", url_for("explain", issue_id="A"))
        assert status == 200 and body["code"] == "running" and body["words"].startswith("plan is running")
        status, body = await call(session, "GET", url_for("issue", issue_id="A"))
        assert status == 200 and body["explain"]["code"] == "running"
        status, body = await call(session, "GET", url_for("explain", issue_id="NOPE"))
        assert status == 404 and body["error"]["code"] == "issue_not_found"
        assert "no issue 'NOPE'" in body["error"]["message"]
        status, body = await call(session, "POST", url_for("drain"), json={})
        assert status == 202 and body["ok"] and body["message"].startswith("draining: 2 running")
        assert served.supervisor.snapshot().draining
        status, body = await call(session, "POST", url_for("drain"))
        assert status == 202 and body["message"].startswith("already draining")
    async with served.tcp_session() as anonymous:
        status, body = await call(anonymous, "POST", url_for("drain"))
        assert status == 401  # TCP needs the token, as every route


# -- the command line ------------------------------------------------------------------------------
def _project(project: Project, **loop: object) -> Path:
    project.set_issues(
        [
            {"id": "A", "title": "a", "state": "todo"},
            {"id": "L", "title": "later", "state": "backlog"},
            {"id": "../x", "title": "bad", "state": "todo"},
        ]
    )
    wf = base_workflow(project)
    wf["loop"].update(max_iterations=None, **loop)
    return project.write(wf)


def test_explain_with_no_supervisor_answers_from_the_workflow_and_one_pull(project: Project) -> None:
    path = _project(project)
    said = vik("explain", "L", str(path))
    assert said.returncode == 0, said.stderr
    assert said.stdout.splitlines() == [
        "L: no stage runs for state `backlog` (stages run for: todo)  [no_stage]",
        "  (no supervisor is running; from the workflow and one pull)",
    ]
    ready = json.loads(vik("explain", "A", str(path), "--json").stdout)
    assert ready["code"] == "ready" and ready["source"].startswith("no supervisor is running")
    rejected = vik("explain", "../x", str(path))
    assert rejected.returncode == 0 and "rejected by intake: record #2: unsafe issue id" in rejected.stdout
    unknown = vik("explain", "ZZ", str(path))
    assert unknown.returncode == 1 and "no issue 'ZZ' in the tracker's last pull" in unknown.stdout
    assert "Traceback" not in unknown.stderr


def test_explain_and_stop_drain_ask_the_running_supervisor(project: Project) -> None:
    path = _project(project, max_issue_concurrency=1)
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "todo"}])
    release = project.root / "release-A"
    wf_text = path.read_text().replace("args: {}", f"args:\n      --until-file: {release}")
    path.write_text(wf_text)
    with supervising(path) as supervisor:
        supervisor.wait_event("stage_started")
        running = vik("explain", "A", str(path))
        assert "A: plan is running (attempt 1, pid" in running.stdout and "(the running supervisor)" in running.stdout
        waiting = vik("explain", "B", str(path))
        assert "waiting for a slot: max_issue_concurrency 1 of 1 running" in waiting.stdout
        drained = vik("stop", "--drain", str(path))
        assert drained.returncode == 0 and drained.stdout.startswith("draining: 1 running"), drained
        draining = vik("explain", "B", str(path))
        assert "[draining]" in draining.stdout and "(the running supervisor)" in draining.stdout
        release.touch()  # A ends now
        assert supervisor.wait(60) == 0  # and the supervisor exits by itself
    names = [e["event"] for e in supervisor.events]
    assert "drain_finished" in names and names[-1] == "supervisor_stopped"
    finished = [(e["issue"], e["state"]) for e in supervisor.named("stage_finished")]
    assert finished == [("A", "completed")]  # A ran to its end; B never started
    again = vik("stop", "--drain", str(path))
    assert again.returncode == 1 and "no supervisor of" in again.stderr and "is running" in again.stderr


def test_stop_drain_then_plain_stop_ends_it_at_once(project: Project) -> None:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "cooperative"}  # would run for an hour
    path = project.write(wf)
    with supervising(path) as supervisor:
        supervisor.wait_event("stage_started")
        assert vik("stop", "--drain", str(path)).returncode == 0
        started = time.monotonic()
        stopped = vik("stop", str(path))
        assert stopped.returncode == 0 and "daemon stopped" in stopped.stdout
        assert time.monotonic() - started < 20
        supervisor.wait(30)
    assert supervisor.named("stage_finished")[0]["state"] == "cancelled"
