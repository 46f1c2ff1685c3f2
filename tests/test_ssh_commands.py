"""What vik-tui hands to `ssh`: the remote command lines are run here by a real `sh` (what the
remote login shell does with them), and the sweep script kills real marked processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vik_tui.config.loader import load_workflow
from vik_tui.engine.places.ssh import REMOTE_MARK_VAR, SshTarget, exec_line, remote_script, sweep_script

NASTY = ["a b", "$HOME", "'quoted'", '"dq"', "semi;colon", "back`tick`", "new\nline", "*"]


def run_remote_line(line: str) -> subprocess.CompletedProcess[str]:
    """Do what sshd does with the command: hand it to the user's shell with `-c`."""
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=30)


def test_arguments_arrive_intact_in_the_workspace_with_the_mark(tmp_path: Path) -> None:
    workdir = tmp_path / "issues" / "it's a dir"
    workdir.mkdir(parents=True)
    probe = [
        sys.executable,
        "-c",
        f"import os, sys; print(repr(sys.argv[1:]), os.getcwd(), os.environ['{REMOTE_MARK_VAR}'])",
    ]
    done = run_remote_line(remote_script(exec_line([*probe, *NASTY]), cwd=str(workdir), mark="s1/u2/agent"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{NASTY!r} {workdir} s1/u2/agent\n"


def test_a_missing_workspace_stops_the_command(tmp_path: Path) -> None:
    done = run_remote_line(remote_script("echo ran", cwd=str(tmp_path / "gone")))
    assert done.returncode == 1 and done.stdout == ""
    assert "gone" in done.stderr


def test_a_home_relative_program_stays_home_relative(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text('#!/bin/sh\necho tool ran with "$1"\n')
    tool.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path)}
    line = remote_script(exec_line(["~/bin/tool", "~/not-expanded"]))
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env, timeout=30)
    assert done.stdout == "tool ran with ~/not-expanded\n"


def test_ssh_never_becomes_a_master_for_a_stage_and_never_prompts() -> None:
    target = SshTarget("build-1", "/etc/vik/ssh_config", "/tmp/vt-ssh-x", "/work")
    argv = target.command("true")
    assert argv[:3] == ["ssh", "-F", "/etc/vik/ssh_config"]
    assert "ControlMaster=no" in argv and "BatchMode=yes" in argv and "-T" in argv
    assert argv[-2:] == ["build-1", "true"]
    interactive = target.command("true", tty=True)
    assert "-t" in interactive and "BatchMode=yes" not in interactive  # a human may answer a prompt
    assert "ControlMaster=yes" in target.master_command() and "ControlPersist=yes" in target.master_command()


def test_the_sweep_ends_marked_processes_even_outside_their_group() -> None:
    """SIGTERM first; what ignores it gets SIGKILL after the grace; others' processes are left alone."""
    stubborn = "trap '' TERM; while :; do sleep 0.05; done"
    env = {**os.environ, REMOTE_MARK_VAR: "sup1/sess2/agent"}
    marked = [
        subprocess.Popen(["sh", "-c", "exec sleep 1000"], env=env, start_new_session=True),
        subprocess.Popen(["sh", "-c", stubborn], env=env, start_new_session=True),
    ]
    other = subprocess.Popen(
        ["sh", "-c", "exec sleep 1000"], env={**os.environ, REMOTE_MARK_VAR: "sup1/other/agent"}, start_new_session=True
    )
    try:
        done = run_remote_line(remote_script(sweep_script("sup1/sess2/", 0.5)))
        assert done.returncode == 0, done.stderr
        killed = {int(pid) for pid in done.stdout.split()}
        assert {p.pid for p in marked} <= killed  # and the stubborn loop's `sleep`, which carries the mark too
        assert other.pid not in killed
        for proc in marked:
            assert proc.wait(timeout=10) < 0  # killed by a signal
        assert other.poll() is None
    finally:
        for proc in [*marked, other]:
            proc.kill()
            proc.wait(timeout=10)


def test_the_sweep_refuses_a_mark_it_cannot_match_literally() -> None:
    with pytest.raises(ValueError, match="unexpected characters"):
        sweep_script("sup1/$(reboot)/", 1)


@pytest.mark.parametrize(
    ("hosts", "code", "fragment"),
    [
        (["-oProxyCommand=touch /tmp/x"], "bad_ssh_host", "starts with `-`"),
        (["build 1"], "bad_ssh_host", "blanks"),
        ([""], "bad_ssh_host", "is empty"),
        (["b1", "b1"], "duplicate_ssh_host", "listed twice"),
    ],
)
def test_unusable_ssh_hosts_are_refused_with_the_line(
    tmp_path: Path, hosts: list[str], code: str, fragment: str
) -> None:
    path = tmp_path / "workflow.yml"
    path.write_text(yaml.safe_dump(_workflow({"ssh_hosts": hosts})))
    result = load_workflow(path)
    assert not result.ok
    found = [d for d in result.errors if d.code == code]
    assert found and fragment in found[0].message and found[0].line is not None


def test_worker_limits_and_the_ssh_config_file_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "workflow.yml"
    worker = {"ssh_hosts": ["b1"], "max_concurrent_agents_per_host": 0, "ssh_config": "missing.cfg"}
    path.write_text(yaml.safe_dump(_workflow(worker)))
    codes = {d.code: d.message for d in load_workflow(path).errors}
    assert "greater than 0" in codes["non_positive_number"]
    assert str(tmp_path / "missing.cfg") in codes["ssh_config_missing"]


def test_agents_are_not_looked_up_here_when_they_run_on_hosts(tmp_path: Path) -> None:
    path = tmp_path / "workflow.yml"
    data = _workflow({"ssh_hosts": ["b1"]})
    data["agents"]["c"]["command"] = "surely-not-installed-here"
    path.write_text(yaml.safe_dump(data))
    result = load_workflow(path, check_path=True)
    assert result.ok and not [d for d in result.warnings if d.code == "executable_not_found"]
    assert result.workflow is not None and result.workflow.worker is not None
    assert result.workflow.worker.ssh_hosts == ["b1"]


def _workflow(worker: dict[str, object]) -> dict[str, object]:
    return {
        "worker": worker,
        "agents": {"c": {"runtime": "codex", "model": "m"}},
        "issues": {"pull": {"command": "echo []"}},
        "issue": {"stages": {"s": {"when": {"state": "todo"}, "agent": "c", "prompt": "go"}}},
    }
