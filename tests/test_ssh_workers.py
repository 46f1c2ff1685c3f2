"""SSH workers against real sshd processes on 127.0.0.1 (`sshd_server`): placement and caps,
remote hooks, exec() and diff, cancel and timeout leaving nothing on the host, a host dying
mid-stage, recovery, and pins that survive a restart. Every agent is the real fake CLI, run
on the "host" through the system `ssh`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import HeadlessProcess, wait_until
from conftest import Project, base_workflow
from engine_helpers import Harness
from sshd_server import SshLab
from test_tmux_e2e import Tmux

from vik_tui import cli
from vik_tui.engine import engine_events as ee
from vik_tui.engine.service.paths import encode_workflow_path
from vik_tui.engine.view import RunStatus, Terminal

TODO = "todo"


@pytest.fixture(autouse=True)
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`workspace.root: ~/ws` is read on each host (its own HOME) and, for the session files and
    logs kept here, on this machine: a home of this test's own, never the real one."""
    home = tmp_path / "local-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def issues(count: int) -> list[dict[str, Any]]:
    return [{"id": f"R-{n}", "title": f"remote {n}", "state": TODO} for n in range(1, count + 1)]


def remote_workflow(project: Project, lab: SshLab, hosts: list[str], **worker: Any) -> dict[str, Any]:
    wf = base_workflow(project)
    wf["workspace"] = {"root": "~/ws"}  # read on the host: each test host has a home of its own
    wf["worker"] = {"ssh_hosts": hosts, "ssh_config": str(lab.config), "health_check_sec": 0.5, **worker}
    wf["loop"]["max_issue_concurrency"] = 10
    return wf


def workdir_of(h: Harness, issue_id: str) -> Path:
    place = h.supervisor.place_of(issue_id)
    return Path(place.workdir(issue_id))


def overlap_by_host(events: list[ee.EngineEvent]) -> dict[str, int]:
    """The most stages each host ran at once, replayed from the start/finish events."""
    host_of: dict[tuple[str, str], str] = {}
    now: dict[str, int] = {}
    peak: dict[str, int] = {}
    for event in events:
        if isinstance(event, ee.StageStarted) and event.host:
            host_of[(event.issue, event.stage)] = event.host
            now[event.host] = now.get(event.host, 0) + 1
            peak[event.host] = max(peak.get(event.host, 0), now[event.host])
        elif isinstance(event, ee.StageFinished) and (event.issue, event.stage) in host_of:
            host = host_of.pop((event.issue, event.stage))
            now[host] -= 1
    return peak


async def test_two_hosts_cap_two_six_issues_spread_and_capped(project: Project, ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    ssh_lab.add_host("host-b")
    project.set_issues(issues(6))
    wf = remote_workflow(project, ssh_lab, ["host-a", "host-b"], max_concurrent_agents_per_host=2)
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": 1.0, "--interval": 0.1}
    wf["issue"]["stages"]["plan"]["hooks"] = {"after_run": "echo $VIK_TEST_HOST > ran-on.txt"}
    h = Harness(project.write(wf)).start()
    assert await h.finish(timeout=90) == 0
    finished = h.named(ee.StageFinished)
    assert len(finished) == 6 and all(e.state == RunStatus.COMPLETED for e in finished), [e.reason for e in finished]
    started = h.named(ee.StageStarted)
    hosts = {e.issue: e.host for e in started}
    first_four = sorted(e.host or "" for e in started[:4])
    assert first_four == ["host-a", "host-a", "host-b", "host-b"]  # least loaded first, up to each cap
    # the last two go wherever a slot frees first
    assert set(hosts.values()) == {"host-a", "host-b"} and len(hosts) == 6
    assert all(peak <= 2 for peak in overlap_by_host(h.events).values()), overlap_by_host(h.events)
    for issue_id, host in hosts.items():  # the hook ran through that host's sshd, in the issue's workspace
        assert (workdir_of(h, issue_id) / "ran-on.txt").read_text().strip() == host
    pins = json.loads(h.supervisor.layout.service_dir.joinpath("hosts.json").read_text())
    assert pins == hosts


async def test_hooks_exec_and_diff_run_on_the_host(project: Project, ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    wf["issue"]["hooks"] = {
        "after_create": "git init -q . && echo base > base.txt && git add base.txt"
        " && git -c user.email=t@t -c user.name=t commit -qm base && echo $VIK_TEST_HOST > created-on.txt"
    }
    prompt_out = project.root / "prompt.txt"
    wf["issue"]["stages"]["plan"]["prompt"] = "host is `exec(echo $VIK_TEST_HOST; pwd)` for {{ issue.id }}"
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "echo changed >> base.txt"}
    wf["agents"]["codex"]["command"] = str(_prompt_recorder(project, prompt_out))
    h = Harness(project.write(wf)).start()
    assert await h.finish(timeout=60) == 0
    (done,) = h.named(ee.StageFinished)
    assert done.state == RunStatus.COMPLETED, done.reason
    workdir = workdir_of(h, "R-1")
    assert str(workdir).startswith(str(ssh_lab.hosts["host-a"].home / "ws" / "workflows"))
    assert (workdir / "created-on.txt").read_text().strip() == "host-a"
    assert prompt_out.read_text() == f"host is host-a\n{workdir} for R-1"  # exec() ran there, in the workspace
    diff = await h.supervisor.workspace_diff("R-1")
    assert "+changed" in diff and "created-on.txt" in diff  # tracked change and a new file, from the host


def _prompt_recorder(project: Project, out: Path) -> Path:
    """An agent command that saves its prompt (stdin) and then behaves as the fake Codex."""
    fake = Path(__file__).parent / "fakes" / "fake_codex"
    script = project.root / "recording_codex"
    script.write_text(f'#!/bin/sh\nFAKE_PROMPT_OUT={out} exec {fake} "$@"\n')
    script.chmod(0o755)
    return script


async def test_cancel_and_timeout_leave_nothing_running_on_the_host(project: Project, ssh_lab: SshLab) -> None:
    host = ssh_lab.add_host("host-a")
    project.set_issues(issues(2))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    wf["loop"]["stage_timeout_sec"] = 8  # R-2 times out; R-1 is cancelled well before
    # ignores SIGTERM and leaves a grandchild that ignores it too: only SIGKILL of everything ends them
    wf["agents"]["codex"]["args"] = {"--mode": "hang"}
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "(setsid sleep 1000 >/dev/null 2>&1 &)"}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) == 2, timeout=30)
    await h.wait_for(lambda: len(host.remote_processes()) >= 4, timeout=30)  # agents, grandchildren, sleeps
    assert h.supervisor.cancel("R-1", "plan") == "cancelling"
    cancelled = await h.wait_event(ee.StageFinished, issue="R-1", timeout=30)
    assert cancelled.state == RunStatus.CANCELLED
    timed_out = await h.wait_event(ee.StageFinished, issue="R-2", timeout=30)
    assert timed_out.state == RunStatus.FAILED and "timed out" in (timed_out.reason or "")
    assert await h.finish(timeout=30) == 0
    assert host.remote_processes() == []  # the agents, their children and the hook's setsid sleep


async def test_a_host_dying_mid_stage_fails_clearly_and_the_other_keeps_working(
    project: Project, ssh_lab: SshLab
) -> None:
    host_a = ssh_lab.add_host("host-a")
    ssh_lab.add_host("host-b")
    project.set_issues(issues(2))
    wf = remote_workflow(project, ssh_lab, ["host-a", "host-b"], max_concurrent_agents_per_host=1)
    wf["loop"]["retry"] = {"max_attempts": 2, "backoff_sec": 1, "max_backoff_sec": 1}
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": 3.0, "--interval": 0.1}
    wf["issue"]["hooks"] = {"after_create": "echo $VIK_TEST_HOST > created-on.txt"}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) == 2, timeout=30)
    on_a = next(e.issue for e in h.named(ee.StageStarted) if e.host == "host-a")
    on_b = next(e.issue for e in h.named(ee.StageStarted) if e.host == "host-b")
    host_a.kill_hard()  # the machine is gone: its sshd, its sessions and the agent on it
    failed = await h.wait_event(ee.StageFinished, issue=on_a, timeout=30)
    assert failed.state == RunStatus.FAILED
    assert (failed.reason or "").startswith("host host-a unreachable"), failed.reason
    assert h.named(ee.HostUnhealthy, host="host-a")
    done_b = await h.wait_event(ee.StageFinished, issue=on_b, timeout=30)
    assert done_b.state == RunStatus.COMPLETED, done_b.reason
    # the retry cannot go back to host-a: it moves, visibly, to host-b and starts a new workspace there
    moved = await h.wait_event(ee.IssueRehosted, issue=on_a, timeout=30)
    assert (moved.from_host, moved.to_host) == ("host-a", "host-b")
    assert await h.finish(timeout=60) == 0
    retried = [e for e in h.named(ee.StageFinished, issue=on_a)][-1]
    assert retried.state == RunStatus.COMPLETED and retried.attempt == 2, retried.reason
    creations = [e for e in h.named(ee.HookFinished, issue=on_a, hook="after_create")]
    assert len(creations) == 2  # the workspace was created again on host-b
    assert (workdir_of(h, on_a) / "created-on.txt").read_text().strip() == "host-b"
    assert h.supervisor.snapshot().find_issue(on_a).host == "host-b"  # type: ignore[union-attr]


async def test_a_host_that_comes_back_takes_work_again(project: Project, ssh_lab: SshLab) -> None:
    host = ssh_lab.add_host("host-a")
    host.kill_hard()  # down before the supervisor starts
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    wf["loop"]["max_iterations"] = None  # keep polling while the host is away
    h = Harness(project.write(wf)).start()
    await h.wait_event(ee.HostUnhealthy, host="host-a", timeout=30)
    await h.wait_event(ee.Intake, timeout=30)
    assert not h.named(ee.StageReserved)  # nowhere to run: it waits, never on this machine
    view = h.supervisor.snapshot()
    assert [(v.name, v.healthy) for v in view.hosts] == [("host-a", False)]
    host.restart()
    back = await h.wait_event(ee.HostHealthy, host="host-a", timeout=30)
    assert back.recovered
    done = await h.wait_event(ee.StageFinished, issue="R-1", timeout=30)
    assert done.state == RunStatus.COMPLETED, done.reason
    assert await h.stop() == 0


async def test_a_full_pool_makes_stages_wait_and_pins_survive_a_restart(project: Project, ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    ssh_lab.add_host("host-b")
    project.set_issues(issues(3))
    wf = remote_workflow(project, ssh_lab, ["host-a", "host-b"], max_concurrent_agents_per_host=1)
    wf["agents"]["codex"]["args"] = {"--sleep": 0.5}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) == 2, timeout=30)
    assert len(h.named(ee.StageReserved)) == 2  # the third waits for a host with room
    assert await h.finish(timeout=60) == 0
    first = {e.issue: e.host for e in h.named(ee.StageStarted)}
    assert len(first) == 3 and all(e.state == RunStatus.COMPLETED for e in h.named(ee.StageFinished))
    # a new state for every issue, a new supervisor: each goes back to the host holding its workspace
    project.set_issues([{**issue, "state": "review"} for issue in issues(3)])
    wf["issue"]["stages"]["review"] = {"when": {"state": "review"}, "agent": "codex", "prompt": "review"}
    again = Harness(project.write(wf)).start()
    assert await again.finish(timeout=60) == 0
    assert {e.issue: e.host for e in again.named(ee.StageStarted)} == first
    assert not again.named(ee.IssueRehosted)


def test_doctor_deep_checks_every_host(project: Project, ssh_lab: SshLab, capsys: pytest.CaptureFixture[str]) -> None:
    ssh_lab.add_host("host-a")
    down = ssh_lab.add_host("host-b")
    down.kill_hard()
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a", "host-b"])
    wf["agents"]["claude"] = {"runtime": "claude_code", "model": "opus", "command": "surely-not-on-any-path"}
    assert cli.main(["doctor", "--deep", str(project.write(wf))]) == 1
    out = capsys.readouterr().out
    assert "[host_unreachable] worker.ssh_hosts.1: host-b: ssh: connect to host 127.0.0.1 port" in out
    assert "[executable_not_found_on_host] agents.claude: host-a: `surely-not-on-any-path` (agent claude)" in out
    assert "host-a: " in out and "[host_workspace_unwritable]" not in out  # its root could be written
    assert "agents.codex" not in out  # the fake Codex is an absolute path that exists there


async def test_the_shell_and_take_over_open_ssh_to_the_issue_host(project: Project, ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    h = Harness(project.write(wf)).start()
    assert await h.finish(timeout=60) == 0
    workdir = str(workdir_of(h, "R-1"))
    shell = await h.supervisor.shell_plan("R-1")
    assert isinstance(shell, Terminal) and shell.argv[0] == "ssh" and "-t" in shell.argv and "host-a" in shell.argv
    assert workdir in shell.argv[-1] and "SHELL" in shell.argv[-1]
    (session,) = h.supervisor.snapshot().find_issue("R-1").sessions  # type: ignore[union-attr]
    plan = await h.supervisor.takeover_plan("R-1", session.session_uuid)
    assert isinstance(plan, Terminal)
    assert "host-a" in plan.argv and "resume" in plan.argv[-1] and workdir in plan.argv[-1]
    # run the take-over line for real, without a terminal: the fake Codex records where it ran
    argv_out = project.root / "argv.json"
    remote = plan.argv[-1].replace("exec ", f"FAKE_ARGV_OUT={argv_out} exec ", 1)
    done = subprocess.run([*ssh_lab.ssh("host-a"), remote], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    recorded = json.loads(argv_out.read_text())
    assert recorded["cwd"] == workdir and recorded["argv"][:1] == ["resume"]


def test_after_a_kill_9_the_next_start_sweeps_the_host(project: Project, ssh_lab: SshLab, local_home: Path) -> None:
    """Killing the local `ssh` ends nothing on the host: the restart must sweep it by mark."""
    host = ssh_lab.add_host("host-a")
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    wf["agents"]["codex"]["args"] = {"--mode": "hang"}  # ignores SIGTERM, with a grandchild that does too
    workflow = project.write(wf)
    first = HeadlessProcess(workflow)
    try:
        first.wait_event("stage_started", host="host-a")
        wait_until(lambda: len(host.remote_processes()) >= 2, 30, "the agent and its grandchild on the host")
        left = {p.pid for p in host.remote_processes()}
        first.kill()  # kill -9: no cleanup at all
        (record,) = local_home.glob("ws/workflows/*/service/running/supervisor.json")
        left_dir = json.loads(record.read_text())["control_dir"]
        assert Path(left_dir).is_dir()
        assert {p.pid for p in host.remote_processes()} & left  # still running there
        wf["agents"]["codex"]["args"] = {}
        project.write(wf)
        second = HeadlessProcess(workflow)
        second.wait_event("stage_started", host="host-a")
        assert not {p.pid for p in host.remote_processes()} & left  # swept before the stage ran again
        assert second.wait() == 0, second.stderr()
        messages = [e["message"] for e in second.named("log")]
        assert any(m.startswith("recovery: killed") and "on host-a" in m for m in messages), messages
        assert host.remote_processes() == []
        assert not Path(left_dir).exists()  # the dead supervisor's socket directory is gone too
    finally:
        first.kill()


async def test_a_clean_stop_ends_the_remote_agents_and_closes_the_connections(
    project: Project, ssh_lab: SshLab
) -> None:
    host = ssh_lab.add_host("host-a")
    project.set_issues(issues(2))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    wf["loop"]["max_iterations"] = None
    wf["agents"]["codex"]["args"] = {"--mode": "hang"}
    h = Harness(project.write(wf)).start()
    await h.wait_for(lambda: len(h.named(ee.StageStarted)) == 2, timeout=30)
    await h.wait_for(lambda: len(host.remote_processes()) >= 4, timeout=30)
    assert await h.stop() == 0
    assert {e.state for e in h.named(ee.StageFinished)} == {RunStatus.CANCELLED}
    assert host.remote_processes() == []
    assert h.supervisor.pool is not None and not Path(h.supervisor.pool.control_dir).exists()


async def test_the_workspace_boundary_is_checked_on_the_host(project: Project, ssh_lab: SshLab, tmp_path: Path) -> None:
    host = ssh_lab.add_host("host-a")
    project.set_issues(issues(1))
    wf = remote_workflow(project, ssh_lab, ["host-a"])
    workflow = project.write(wf)
    issues_dir = host.home / "ws" / "workflows" / encode_workflow_path(workflow.resolve()) / "issues"
    issues_dir.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (issues_dir / "R-1").symlink_to(outside)  # a workspace that leads out of the root, on the host
    h = Harness(workflow).start()
    assert await h.finish(timeout=60) == 0
    (done,) = h.named(ee.StageFinished)
    assert done.state == RunStatus.FAILED and "outside the root" in (done.reason or ""), done.reason
    assert not h.named(ee.StageStarted) and list(outside.iterdir()) == []  # nothing ran there


async def test_max_issue_concurrency_still_bounds_the_total(project: Project, ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    ssh_lab.add_host("host-b")
    project.set_issues(issues(5))
    wf = remote_workflow(project, ssh_lab, ["host-a", "host-b"], max_concurrent_agents_per_host=2)
    wf["loop"]["max_issue_concurrency"] = 3
    wf["agents"]["codex"]["args"] = {"--sleep": 0.5}
    h = Harness(project.write(wf))
    peak = 0

    def count(_event: ee.EngineEvent) -> None:
        nonlocal peak
        peak = max(peak, h.supervisor.snapshot().running)

    h.supervisor.subscribe(count)
    h.start()
    assert await h.finish(timeout=90) == 0
    assert len(h.named(ee.StageFinished)) == 5 and peak == 3
    assert all(value <= 2 for value in overlap_by_host(h.events).values())


async def test_the_shell_plan_opens_an_interactive_shell_in_the_workspace_on_the_host(
    project: Project, ssh_lab: SshLab
) -> None:
    """What `s` runs in a tmux split, in a real terminal: `ssh -t` lands in the issue's workspace there."""
    ssh_lab.add_host("host-a")
    project.set_issues(issues(1))
    h = Harness(project.write(remote_workflow(project, ssh_lab, ["host-a"]))).start()
    assert await h.finish(timeout=60) == 0
    plan = await h.supervisor.shell_plan("R-1")
    assert isinstance(plan, Terminal)
    tmux = Tmux()
    try:
        tmux.run("new-session", "-d", "-s", "vik", "-x", "200", "-y", "30", "-c", str(plan.cwd), plan.command_line)
        tmux.run("send-keys", "-t", "vik", "echo at=$(pwd) on=$VIK_TEST_HOST", "Enter")
        joined = lambda: tmux.run("capture-pane", "-p", "-J", "-t", "vik", check=False)  # noqa: E731
        tmux.wait(lambda: f"at={workdir_of(h, 'R-1')} on=host-a" in joined(), "the shell's answer")
        tmux.run("send-keys", "-t", "vik", "exit", "Enter")
    finally:
        tmux.kill()
