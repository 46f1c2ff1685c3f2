"""The leak guard (tests/leak_guard.py) fails a run whose tests leave processes behind.

Each case runs a child pytest, in its own session so that no mistake of the guard can reach
this run, on a tiny test file that leaks `sleep` processes (one in its own process group,
one in pytest's) and checks that the child run fails, names both, and killed them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import process_running

TESTS_DIR = Path(__file__).parent

LEAKY = textwrap.dedent("""\
    import subprocess
    from pathlib import Path

    def test_leaks_a_group(tmp_path):
        proc = subprocess.Popen(["sleep", "987"], start_new_session=True)
        Path(__file__).with_name("group.pid").write_text(str(proc.pid))

    def test_leaks_into_pytests_group():
        proc = subprocess.Popen(["sleep", "988"])
        Path(__file__).with_name("plain.pid").write_text(str(proc.pid))

    def test_clean():
        subprocess.run(["sleep", "0"], check=True)
    """)

CLEAN = textwrap.dedent("""\
    import subprocess

    def test_waits_for_its_child():
        subprocess.run(["sleep", "0"], check=True)
    """)


def run_child(
    tmp_path: Path, test_source: str, *args: str, own_conftest: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A child pytest on one test file, with the guard: from a minimal conftest of its own, or
    (`own_conftest=False`, pass `-p conftest`) from this suite's, fixtures and all."""
    if own_conftest:
        (tmp_path / "conftest.py").write_text('pytest_plugins = ("leak_guard",)\n')
    (tmp_path / "test_child.py").write_text(test_source)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN", *args, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


@pytest.mark.parametrize("mode", [["-p", "no:xdist"], ["-n", "2"]], ids=["plain", "xdist"])
def test_a_leaked_process_fails_the_run_and_is_killed(tmp_path: Path, mode: list[str]) -> None:
    proc = run_child(tmp_path, LEAKY, *mode)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "3 passed" in out, out  # every test passed: the leftovers alone fail the run
    listed = re.findall(r"^pid (\d+) started by (\S+): (.*)$", proc.stdout, re.MULTILINE)
    group_pid, plain_pid = (int((tmp_path / name).read_text()) for name in ("group.pid", "plain.pid"))
    assert sorted(listed) == sorted(
        [
            (str(group_pid), "test_child.py::test_leaks_a_group", "sleep 987"),
            (str(plain_pid), "test_child.py::test_leaks_into_pytests_group", "sleep 988"),
        ]
    ), out
    assert "FAILED: 2 process(es) outlived the tests" in proc.stdout
    assert not process_running(group_pid) and not process_running(plain_pid)


def test_a_clean_run_passes(tmp_path: Path) -> None:
    proc = run_child(tmp_path, CLEAN, "-p", "no:xdist")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "processes left behind" not in proc.stdout
