"""The `ssh_lab` fixture runs real sshd servers: commands reach the named host, ControlMaster works
through the generated ssh_config, a host killed hard drops its connections and comes back on
restart, a stop leaves no process, and a process left running on a host fails the run.

Every wait is on a condition with a generous deadline (a loaded 2-core machine is slow, not wrong).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from chaos_helpers import wait_until
from conftest import process_running
from sshd_server import SshHost, SshLab
from test_leak_guard import run_child

TESTS_DIR = Path(__file__).parent
SSH_TIMEOUT_SEC = 60.0


def ssh(lab: SshLab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lab.ssh(*args), capture_output=True, text=True, timeout=SSH_TIMEOUT_SEC, stdin=subprocess.DEVNULL
    )


def remote_sleep(lab: SshLab, host: SshHost) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    """An ssh client whose remote command runs until killed, and that remote `sleep` once it runs."""
    client = subprocess.Popen(lab.ssh(host.name, "sleep 1000"), stdin=subprocess.DEVNULL)

    def sleeper() -> psutil.Process | None:
        for proc in host.remote_processes():
            with contextlib.suppress(psutil.Error):  # .bashrc's helpers come and go
                if proc.cmdline() == ["sleep", "1000"]:
                    return proc
        return None

    return client, wait_until(sleeper, what="the remote sleep to start")


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A directory for control sockets: a unix socket path must stay under 108 bytes, and pytest's
    tmp_path is longer than that leaves room for."""
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="vt-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_command_runs_on_the_named_host(ssh_lab: SshLab) -> None:
    ssh_lab.add_host("host-a")
    out = ssh(ssh_lab, "host-a", "echo $VIK_TEST_HOST")
    assert (out.returncode, out.stdout) == (0, "host-a\n"), out.stderr


def test_two_hosts_listen_on_their_own_ports(ssh_lab: SshLab) -> None:
    a, b = ssh_lab.add_host("host-a"), ssh_lab.add_host("host-b")
    assert a.port != b.port and a.pid != b.pid
    for name in ("host-a", "host-b", "host-a"):
        out = ssh(ssh_lab, name, "echo $VIK_TEST_HOST")
        assert (out.returncode, out.stdout) == (0, f"{name}\n"), out.stderr


def test_control_master_works_through_the_config(ssh_lab: SshLab) -> None:
    host = ssh_lab.add_host("host-a")
    with short_dir() as sockets:
        master = ["-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/%C", "-o", "ControlPersist=30"]
        try:
            for _ in range(2):
                out = ssh(ssh_lab, *master, "host-a", "true")
                assert out.returncode == 0, out.stderr
            check = ssh(ssh_lab, *master, "-O", "check", "host-a")
            assert check.returncode == 0, check.stderr
            running = re.search(r"Master running \(pid=(\d+)\)", check.stderr)
            assert running, check.stderr
            # the second command rode the first one's connection: the server authenticated once
            assert host.log.read_text().count("Accepted publickey") == 1, host.log.read_text()
        finally:
            ssh(ssh_lab, *master, "-O", "exit", "host-a")
        wait_until(lambda: not process_running(int(running[1])), what="the master to exit")


def test_kill_hard_drops_connections_and_restart_brings_the_host_back(ssh_lab: SshLab) -> None:
    host = ssh_lab.add_host("host-a")
    port, pid = host.port, host.pid
    client, sleeper = remote_sleep(ssh_lab, host)
    detached = ssh(ssh_lab, "host-a", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
    assert detached.returncode == 0, detached.stderr
    try:
        host.kill_hard()
        assert client.wait(SSH_TIMEOUT_SEC) == 255  # the open connection dropped
        assert not process_running(sleeper.pid)
        assert not process_running(int(detached.stdout))  # the machine went down: even a detached process
        down = ssh(ssh_lab, "host-a", "true")
        assert down.returncode == 255, down.stderr
        host.restart()
        assert (host.port, host.pid != pid) == (port, True)
        out = ssh(ssh_lab, "host-a", "echo $VIK_TEST_HOST")
        assert (out.returncode, out.stdout) == (0, "host-a\n"), out.stderr
    finally:
        client.kill()
        client.wait()


def test_stop_leaves_no_process_behind(ssh_lab: SshLab) -> None:
    host = ssh_lab.add_host("host-a")
    client, sleeper = remote_sleep(ssh_lab, host)
    try:
        tree = [psutil.Process(host.pid), *psutil.Process(host.pid).children(recursive=True)]
        assert sleeper.pid in {p.pid for p in tree}
        host.stop()
        assert [p.pid for p in tree if process_running(p.pid)] == []
        assert host.remote_processes() == []
        assert client.wait(SSH_TIMEOUT_SEC) == 255
    finally:
        client.kill()
        client.wait()


LEAKY = textwrap.dedent("""\
    import subprocess
    import time
    from pathlib import Path

    def test_leaves_a_remote_process(ssh_lab):
        ssh_lab.add_host("host-a")
        command = "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"
        out = subprocess.run(ssh_lab.ssh("host-a", command), capture_output=True, text=True, check=True, timeout=60)
        Path(__file__).with_name("remote.pid").write_text(out.stdout)
        # until `setsid` has exec'd `sleep` (the guard names what it finds by its command line)
        cmdline = Path(f"/proc/{int(out.stdout)}/cmdline")
        deadline = time.monotonic() + 60
        while not cmdline.read_bytes().startswith(b"sleep") and time.monotonic() < deadline:
            time.sleep(0.01)
    """)


@pytest.mark.parametrize("mode", [["-p", "no:xdist"], ["-n", "2"]], ids=["plain", "xdist"])
def test_the_leak_guard_finds_a_process_left_on_a_host(tmp_path: Path, mode: list[str]) -> None:
    """A child pytest loads this conftest as a plugin (so it gets the real `ssh_lab` and the guard)
    and runs one test that leaves a detached process on a host."""
    proc = run_child(tmp_path, LEAKY, "-p", "conftest", *mode, own_conftest=False, timeout=180)
    out = proc.stdout + proc.stderr
    remote = int((tmp_path / "remote.pid").read_text())
    try:
        assert proc.returncode == 1, out
        assert "1 passed" in out, out  # the test passed: the leftover alone fails the run
        listed = re.findall(r"^pid (\d+) started by (\S+): (.*)$", proc.stdout, re.MULTILINE)
        assert listed == [(str(remote), "test_child.py::test_leaves_a_remote_process", "sleep 1000")], out
        assert not process_running(remote)
    finally:
        with contextlib.suppress(OSError):
            if process_running(remote):
                os.kill(remote, signal.SIGKILL)
