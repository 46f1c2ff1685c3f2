"""The attached UI against a real supervisor: `vik-tui run -d` (a real daemon serving its API on
its real Unix socket, fake agents streaming), the real `AttachedEngine`, the real app (Pilot),
and a real terminal (tmux). Nothing the supervisor does may depend on a client."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import layout_of, session_files, wait_until
from conftest import Project, base_workflow, process_running, wait_on_screen
from test_tmux_e2e import Tmux

from vik_tui.api.attached import AttachedEngine
from vik_tui.api.target import ApiTarget, from_url, live_supervisor
from vik_tui.engine import engine_events as ee
from vik_tui.ui.app import VikApp
from vik_tui.ui.widgets.event_log import EventLog
from vik_tui.ui.widgets.status_line import StatusLine

VIK = [sys.executable, "-m", "vik_tui"]


def vik(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIK, *args], capture_output=True, text=True, timeout=timeout)


def talking_workflow(project: Project, issues: int, seconds: float, idle_sec: int = 1) -> Path:
    """`issues` agents, each talking (a tool call and a message every 0.2 s) for `seconds`; the
    supervisor runs until stopped."""
    project.set_issues([{"id": f"T-{i}", "title": f"talker {i}", "state": "todo"} for i in range(issues)])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["loop"]["max_issue_concurrency"] = issues
    wf["loop"]["stage_timeout_sec"] = 600
    wf["issues"]["pull"]["idle_sec"] = idle_sec
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": seconds, "--interval": 0.2}
    return project.write(wf)


def supervisor_pid(path: Path) -> int:
    state = json.loads(layout_of(path).state_file.read_text())
    return int(state["pid"])


@pytest.fixture
def daemon_of() -> Iterator[list[Path]]:
    """Workflows whose daemons the test starts; each is stopped at the end, pass or fail."""
    started: list[Path] = []
    yield started
    for path in started:
        state = layout_of(path).state_file
        pid = json.loads(state.read_text())["pid"] if state.exists() else None
        vik("stop", str(path))
        if pid is not None and process_running(pid):
            os.kill(pid, signal.SIGKILL)


def start_daemon(path: Path, started: list[Path]) -> int:
    out = vik("run", "-d", str(path))
    assert out.returncode == 0, out.stderr
    started.append(path)
    return supervisor_pid(path)


def target_of(path: Path) -> ApiTarget:
    target = live_supervisor(layout_of(path))
    assert target is not None
    return target


def header(app: VikApp) -> str:
    return str(app.main.query_one(StatusLine).render())


def pane_steps(app: VikApp) -> list[int]:
    """The `Step N` numbers of the agent messages the shown pane holds."""
    log = app.main.panes.log_widget
    steps = []
    for line in log.lines:
        text = str(line)
        if "Step " in text:
            steps.append(int(text.split("Step ", 1)[1].split(":", 1)[0]))
    return steps


async def test_attach_shows_the_agents_live_and_q_leaves_them_running(project: Project, daemon_of: list[Path]) -> None:
    path = talking_workflow(project, issues=2, seconds=120)
    pid = start_daemon(path, daemon_of)
    engine = AttachedEngine(target_of(path))
    app = VikApp(engine, bell=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_on_screen(pilot, lambda: f"attached to pid {pid}" in header(app), "the attached header")
        await wait_on_screen(pilot, lambda: "running 2/4" in header(app) or "running 2/2" in header(app), "2 running")
        first = await wait_on_screen(pilot, lambda: pane_steps(app), "the pane's agent messages", timeout=60)
        # live: later messages arrive while we watch
        await wait_on_screen(pilot, lambda: max(pane_steps(app)) > max(first) + 3, "newer messages", timeout=60)
        assert len(set(pane_steps(app))) == len(pane_steps(app))  # none shown twice
        await pilot.press("q")
        await wait_on_screen(pilot, lambda: app.return_code is not None, "the detach")
        assert engine.connected is False
    assert app.return_code == 0
    # the supervisor and both agents go on: their session files keep growing
    assert process_running(pid)
    files = session_files(path)
    assert len(files) == 2
    sizes = [f.stat().st_size for f in files]
    wait_until(lambda: all(f.stat().st_size > s for f, s in zip(files, sizes, strict=True)), 30, "the agents to go on")
    assert not any("outcome" in line for f in files for line in f.read_text().splitlines()[-1:])


async def test_restart_under_an_attached_ui_reconnects_and_shows_each_event_once(
    project: Project, daemon_of: list[Path]
) -> None:
    # the agents talk for 4 s; intake polls at start only (every 300 s), so once they finish the
    # supervisor is quiet; the new supervisor gets two new issues
    path = talking_workflow(project, issues=2, seconds=4, idle_sec=300)
    old_pid = start_daemon(path, daemon_of)
    engine = AttachedEngine(target_of(path))
    seen: list[ee.EngineEvent] = []
    notes: list[str] = []
    engine.subscribe(seen.append)
    app = VikApp(engine, bell=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_on_screen(pilot, lambda: f"attached to pid {old_pid}" in header(app), "the attached header")
        original = engine.on_change
        assert original is not None

        def changed() -> None:
            notes.append(engine.attachment())
            original()

        engine.on_change = changed
        old_finished = lambda: sum(isinstance(e, ee.StageFinished) for e in seen)  # noqa: E731
        await wait_on_screen(pilot, lambda: old_finished() >= 2, "the first supervisor's stages to finish", timeout=90)
        project.set_issues([{"id": f"N-{i}", "title": f"new {i}", "state": "todo"} for i in range(2)])
        restarted = await asyncio.to_thread(vik, "restart", str(path))
        assert restarted.returncode == 0, restarted.stderr
        new_pid = supervisor_pid(path)
        assert new_pid != old_pid
        await wait_on_screen(pilot, lambda: f"attached to pid {new_pid}" in header(app), "the new pid", timeout=60)
        assert "supervisor gone — reconnecting…" in notes, notes  # the header said so meanwhile

        def written() -> list[dict[str, Any]]:
            """What the new supervisor logged, from its `supervisor_started` on."""
            lines = []
            for log_file in sorted(layout_of(path).logs_dir.glob("vik.log.*")):
                lines += [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
            starts = [
                i for i, r in enumerate(lines) if r.get("event") == "supervisor_started" and r.get("pid") == new_pid
            ]
            return lines[starts[0] :] if starts else []

        def new_ones() -> list[ee.EngineEvent]:
            records = written()
            return [e for e in seen if e.ts >= records[0]["timestamp"]] if records else []

        def finished() -> int:
            return sum(isinstance(e, ee.StageFinished) for e in new_ones())

        await wait_on_screen(pilot, lambda: finished() >= 2, "the new supervisor's stages to finish", timeout=90)

        def log_pane() -> str:
            strips = app.main.query_one(EventLog).lines
            return "\n".join("".join(segment.text for segment in strip) for strip in strips)

        await wait_on_screen(
            pilot, lambda: "N-0/plan COMPLETED" in log_pane() and "N-1/plan COMPLETED" in log_pane(), "the log pane"
        )
        for i in range(2):
            assert log_pane().count(f"N-{i}/plan COMPLETED") == 1
        await pilot.press("q")
    # every event the new supervisor logged reached the client once, in order, from its
    # `supervisor_started` on (emitted before its API serves: the replay ring holds it)
    logged = [(e.name, e.ts) for e in new_ones() if e.logged]
    records = [(r["event"], r["timestamp"]) for r in written()]
    assert records[0][0] == "supervisor_started"
    assert records[: len(logged)] == logged, f"logged by the supervisor: {records}\nseen: {logged}"
    # none twice (two stages may start in the same millisecond: an event is its name, time and stage)
    delivered = [(e.name, e.ts, getattr(e, "issue", None), getattr(e, "stage", None)) for e in new_ones() if e.logged]
    assert len(delivered) == len(set(delivered))
    assert sum(1 for name, _ in records if name == "stage_finished") == finished() == 2


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")
def test_killing_an_attached_ui_changes_nothing_for_the_supervisor(
    project: Project, daemon_of: list[Path], tmp_path: Path
) -> None:
    """`vik-tui WORKFLOW` attaches by itself to the running daemon; kill -9 it and close its
    pane while three agents stream: every agent finishes and its outcome is written, and the
    supervisor logged no error."""
    path = talking_workflow(project, issues=3, seconds=8, idle_sec=300)
    pid = start_daemon(path, daemon_of)
    tmux = Tmux()
    venv_bin = Path(sys.executable).parent
    python, workflow = shlex.quote(sys.executable), shlex.quote(str(path))
    command = f"PATH={shlex.quote(str(venv_bin))}:$PATH exec {python} -m vik_tui {workflow}"
    try:
        tmux.run("new-session", "-d", "-s", "vik", "-x", "150", "-y", "40", "sh", "-c", command)
        tmux.wait_screen(lambda s: f"attached to pid {pid}" in s and "Step " in s, "the attached UI streaming")
        ui_pid = int(tmux.run("list-panes", "-t", "vik", "-F", "#{pane_pid}").split()[0])
        assert ui_pid != pid
        os.kill(ui_pid, signal.SIGKILL)
    finally:
        tmux.kill()  # the pane and its terminal go too
    wait_until(lambda: not process_running(ui_pid), 20, "the UI to be gone")
    layout = layout_of(path)

    def outcomes() -> list[dict[str, Any]]:
        found = []
        for session in session_files(path):
            last = session.read_text().splitlines()[-1:]
            record = json.loads(last[0]) if last else {}
            if "outcome" in record:
                found.append(record["outcome"])
        return found

    wait_until(lambda: len(outcomes()) == 3, 90, "three outcomes")
    assert [o["state"] for o in outcomes()] == ["completed"] * 3
    assert process_running(pid)

    def logged() -> list[dict[str, Any]]:
        return [json.loads(line) for f in layout.logs_dir.glob("vik.log.*") for line in f.read_text().splitlines()]

    # the outcome is the session file's last record; `stage_finished` is logged after it
    # (after the stage's closing work), so it is waited for, not assumed
    wait_until(lambda: sum(1 for r in logged() if r.get("event") == "stage_finished") >= 3, 60, "three stage_finished")
    errors = list(layout.logs_dir.glob("vik-error.log.*"))
    assert [e.read_text() for e in errors if e.read_text().strip()] == []
    assert [r for r in logged() if r["level"] in ("ERROR", "WARN")] == []
    assert sum(1 for r in logged() if r.get("event") == "stage_finished") == 3


def test_attach_bad_input_is_a_message(project: Project) -> None:
    path = project.write(base_workflow(project))
    none_running = vik("attach", str(path))
    assert none_running.returncode == 1
    assert none_running.stderr.strip() == (
        f"vik-tui attach: no supervisor of {path} is running; start one with `vik-tui run -d {path}`"
        f" (or `vik-tui {path}` runs it in this terminal)"
    )
    missing = vik("attach", str(project.root / "nope.yml"))
    assert missing.returncode == 2 and "no workflow file at" in missing.stderr
    no_token = subprocess.run(
        [*VIK, "attach", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "VIK_TUI_TOKEN"},
    )
    assert no_token.returncode == 2
    assert "needs the supervisor's token: --token TOKEN or VIK_TUI_TOKEN" in no_token.stderr
    in_query = vik("attach", "http://127.0.0.1:9/?token=abc")
    assert in_query.returncode == 2 and "never accepted in the URL" in in_query.stderr
    not_a_url = vik("attach", "http://")
    assert not_a_url.returncode == 2 and "not an API address" in not_a_url.stderr
    for out in (none_running, missing, no_token, in_query, not_a_url):
        assert "Traceback" not in out.stderr


async def test_attach_over_tcp_needs_the_right_token(project: Project, daemon_of: list[Path]) -> None:
    """A supervisor serving TCP (`run -d --port 0`): the client attaches with the token
    `vik-tui status` prints; a wrong token is one line and exit 1, before any screen."""
    path = talking_workflow(project, issues=1, seconds=60)
    out = vik("run", "-d", "--port", "0", str(path))
    assert out.returncode == 0, out.stderr
    daemon_of.append(path)
    pid = supervisor_pid(path)
    status = dict(line.split(": ", 1) for line in vik("status", str(path)).stdout.splitlines())
    url, token = status["api_url"], status["api_token"]
    assert url.startswith("http://127.0.0.1:")
    wrong = await asyncio.to_thread(vik, "attach", url, "--token", "not-the-token")
    assert wrong.returncode == 1
    base = url.removesuffix("/api/v1")  # status prints the API's URL; attach takes it with or without
    assert wrong.stderr.strip().startswith(f"vik-tui attach: the supervisor at {base} refused the token")
    nobody = await asyncio.to_thread(vik, "attach", "http://127.0.0.1:9", "--token", token)
    assert nobody.returncode == 1 and "cannot attach to http://127.0.0.1:9: cannot connect" in nobody.stderr
    engine = AttachedEngine(from_url(url, token))
    app = VikApp(engine, bell=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_on_screen(pilot, lambda: f"attached to pid {pid}" in header(app), "the attached header")
        await wait_on_screen(pilot, lambda: pane_steps(app), "the pane's agent messages", timeout=60)
        await pilot.press("q")
    assert process_running(pid)


async def test_drain_from_an_attached_ui_lets_the_running_stages_finish_then_the_supervisor_exits(
    project: Project, daemon_of: list[Path]
) -> None:
    path = talking_workflow(project, issues=2, seconds=4)
    pid = start_daemon(path, daemon_of)
    engine = AttachedEngine(target_of(path))
    app = VikApp(engine, bell=False)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_on_screen(pilot, lambda: "running 2/" in header(app), "2 running")
        await pilot.press("D")
        await wait_on_screen(pilot, lambda: "draining · 2 running" in header(app), "the drain in the header")
        wait_until(lambda: not process_running(pid), 60, "the drained supervisor to exit")
        await pilot.press("q")
    outcomes = [f.read_text().splitlines()[-1] for f in session_files(path)]
    assert len(outcomes) == 2 and all('"completed"' in line for line in outcomes), outcomes
