"""Intake: the pull command really runs; its JSON is kept, aliased, or dropped with a reason."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Project

from vik_tui.engine.intake import Issue, parse_issues, parse_record, run_pull


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (it runs nothing)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def pull(project: Project, issues: Any, timeout: float = 60) -> Any:
    project.set_issues(issues)
    return await run_pull(project.pull_command, project.root, timeout)


# -- good payloads ------------------------------------------------------------------------------


async def test_pulls_issues_with_every_field(project: Project) -> None:
    result = await pull(
        project,
        [
            {
                "id": "ENG-1",
                "title": "Fix it",
                "state": "todo",
                "description": "long text",
                "priority": 2,
                "labels": ["bug"],
                "assignee": {"name": "ada"},
            },
        ],
    )
    assert result.ok and result.rejected == [] and result.exit_code == 0
    (issue,) = result.issues
    assert issue == Issue(
        id="ENG-1",
        title="Fix it",
        state="todo",
        description="long text",
        extra={"priority": 2, "labels": ["bug"], "assignee": {"name": "ada"}},
    )
    fields = issue.template_fields()
    assert fields["priority"] == 2 and fields["id"] == "ENG-1" and fields["description"] == "long text"


async def test_aliases(project: Project) -> None:
    result = await pull(
        project,
        [
            {"identifier": "A", "title": "t", "status": "todo", "desc": "d"},
            {
                "id": "B",
                "identifier": "ignored",
                "title": "t",
                "state": "s1",
                "status": "s2",
                "description": "x",
                "desc": "y",
            },
            {"id": None, "identifier": "C", "title": "t", "state": None, "status": "todo"},
        ],
    )
    assert result.rejected == []
    a, b, c = result.issues
    assert (a.id, a.state, a.description, a.extra) == ("A", "todo", "d", {})
    assert (b.id, b.state, b.description) == ("B", "s1", "x")  # canonical name wins over alias
    assert (c.id, c.state) == ("C", "todo")  # a null canonical field falls back to its alias


async def test_integer_ids_become_strings_and_description_defaults(project: Project) -> None:
    result = await pull(
        project,
        [
            {"id": 42, "title": "t", "state": "todo"},
            {"id": "7", "title": "t", "state": "todo", "description": {"a": 1}},
        ],
    )
    assert [(i.id, i.description) for i in result.issues] == [("42", ""), ("7", '{"a": 1}')]


async def test_duplicates_first_wins(project: Project) -> None:
    result = await pull(
        project,
        [
            {"id": "1", "title": "first", "state": "todo"},
            {"id": "1", "title": "second", "state": "done"},
            {"identifier": "1", "title": "third", "status": "x"},
        ],
    )
    assert [i.title for i in result.issues] == ["first"]
    assert [(r.index, r.issue_id) for r in result.rejected] == [(1, "1"), (2, "1")]
    assert all("duplicate issue id '1' (first one wins)" in r.reason for r in result.rejected)


async def test_empty_array_is_fine(project: Project) -> None:
    result = await pull(project, [])
    assert result.ok and result.issues == [] and result.rejected == []


async def test_runs_from_the_given_dir_with_sh(project: Project) -> None:
    (project.root / "issues.json").write_text(json.dumps([{"id": "1", "title": "t", "state": "s"}]))
    # relative path, a pipe and $(...) need sh -c in the workflow dir
    result = await run_pull('cat issues.json | cat; test -n "$(pwd)"', project.root, 60)
    assert result.ok and [i.id for i in result.issues] == ["1"]
    where = await run_pull('printf \'[{"id":"1","title":"%s","state":"s"}]\' "$(pwd)"', project.root, 60)
    assert where.issues[0].title == str(project.root)


async def test_stdin_is_closed(project: Project) -> None:
    result = await run_pull("cat; echo []", project.root, 60)  # would hang if stdin were inherited
    assert result.ok


async def test_stderr_of_a_successful_command_is_kept(project: Project) -> None:
    result = await run_pull("echo warming up >&2; echo '[]'", project.root, 60)
    assert result.ok and result.stderr_tail.strip() == "warming up"


# -- bad payloads: a whole-pull error -----------------------------------------------------------


BAD_PAYLOADS = [
    ("", "printed nothing"),
    ("   \n", "printed nothing"),
    ("not json", "not JSON (Expecting value at line 1 column 1): 'not json'"),
    ('[{"id": 1,}]', "not JSON"),
    ('{"id": "1"}', "must be a JSON array (got dict)"),
    ('"a string"', "must be a JSON array (got str)"),
    ("42", "must be a JSON array (got int)"),
    ("null", "must be a JSON array (got NoneType)"),
    ("[]\n[]", "not JSON (Extra data"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('[{"id": ' + "9" * 5000 + "}]", "not usable JSON"),
]


@pytest.mark.parametrize("stdout, expect", BAD_PAYLOADS, ids=[f"payload{n}" for n in range(len(BAD_PAYLOADS))])
async def test_bad_payloads(project: Project, stdout: str, expect: str) -> None:
    result = await pull(project, stdout)
    assert not result.ok and result.issues == []
    assert expect in (result.error or "")
    direct = parse_issues(stdout)
    assert direct.error == result.error


async def test_invalid_utf8_is_replaced_not_fatal(project: Project) -> None:
    project.tracker.write_bytes(b'[{"id": "1", "title": "caf\xe9", "state": "todo"}]')
    result = await run_pull(project.pull_command, project.root, 60)
    assert result.ok and result.issues[0].title == "caf\ufffd"


# -- bad records: dropped one by one -------------------------------------------------------------

BAD_RECORDS: list[tuple[Any, str]] = [
    ("just a string", "record #0 is not an object (got string)"),
    (["a", "list"], "record #0 is not an object (got array)"),
    (None, "record #0 is not an object (got null)"),
    ({"title": "t", "state": "todo"}, "record #0: missing `id` (or `identifier`)"),
    ({"id": None, "title": "t", "state": "todo"}, "record #0: missing `id`"),
    ({"id": 1.5, "title": "t", "state": "todo"}, "`id` must be a string or an integer (got number)"),
    ({"id": True, "title": "t", "state": "todo"}, "`id` must be a string or an integer (got boolean)"),
    ({"id": ["x"], "title": "t", "state": "todo"}, "(got array)"),
    ({"id": "X", "state": "todo"}, "issue X: missing `title`"),
    ({"id": "X", "title": "t"}, "issue X: missing `state` (or `status`)"),
    ({"id": "X", "title": 5, "state": "todo"}, "issue X: `title` must be a string (got number)"),
    ({"id": "X", "title": "t", "state": {"name": "todo"}}, "issue X: `state` must be a string (got object)"),
    ({"id": "X", "title": "t", "status": False}, "`state` must be a string (got boolean)"),
    ({"id": "", "title": "t", "state": "s"}, "unsafe issue id '': empty id"),
    ({"id": "..", "title": "t", "state": "s"}, "unsafe issue id '..'"),
    ({"id": ".git", "title": "t", "state": "s"}, "starts with `.`"),
    ({"id": "../../etc/passwd", "title": "t", "state": "s"}, "starts with `.`"),
    ({"id": "a/../../etc", "title": "t", "state": "s"}, "path separator"),
    ({"id": "a\u0000b", "title": "t", "state": "s"}, "NUL"),
    ({"id": "a\nb", "title": "t", "state": "s"}, "control character"),
    ({"id": "x" * 201, "title": "t", "state": "s"}, "longer than 200 bytes"),
    ({"identifier": "a/b", "title": "t", "status": "s"}, "path separator"),
]


@pytest.mark.parametrize("record, reason", BAD_RECORDS, ids=[f"record{n}" for n in range(len(BAD_RECORDS))])
async def test_bad_records_are_dropped_with_a_reason(project: Project, record: Any, reason: str) -> None:
    good = {"id": "OK-1", "title": "fine", "state": "todo"}
    result = await pull(project, [record, good])
    assert result.ok  # one bad record does not spoil the pull
    assert [i.id for i in result.issues] == ["OK-1"]
    (rejected,) = result.rejected
    assert rejected.index == 0 and reason in rejected.reason, rejected.reason


async def test_lone_surrogate_id_is_refused(project: Project) -> None:
    result = await pull(project, '[{"id": "a\\ud800", "title": "t", "state": "s"}]')
    assert result.issues == [] and "surrogate" in result.rejected[0].reason


async def test_huge_unsafe_id_is_shortened_in_the_reason(project: Project) -> None:
    result = await pull(project, [{"id": "y" * 100_000, "title": "t", "state": "s"}])
    assert len(result.rejected[0].reason) < 300


def test_parse_record_never_raises_on_odd_values() -> None:
    odd: list[Any] = [
        0,
        1.5,
        True,
        [],
        {},
        {"id": {}},
        {"id": "x", "title": "t", "state": "s", "description": None},
        {"id": "x", "title": "t", "state": "s", "extra": float("nan")},
    ]
    for index, record in enumerate(odd):
        parse_record(index, record)  # no exception is the assertion


async def test_many_issues(project: Project) -> None:
    issues = [{"id": f"I-{n}", "title": f"t{n}", "state": "todo", "n": n} for n in range(5000)]
    result = await pull(project, issues)
    assert len(result.issues) == 5000 and result.issues[-1].extra == {"n": 4999}


# -- the command fails or hangs ------------------------------------------------------------------


async def test_failed_command_reports_exit_code_and_stderr_tail(project: Project) -> None:
    script = (
        'i=0; while [ $i -lt 500 ]; do echo "noise line $i" >&2; i=$((i+1)); done; '
        "echo 'auth failed: token expired' >&2; exit 3"
    )
    result = await run_pull(script, project.root, 60)
    assert not result.ok and result.exit_code == 3
    assert result.error.startswith("pull command exited with code 3: ")
    assert result.error.endswith("auth failed: token expired")
    assert result.stderr_tail.endswith("auth failed: token expired\n")
    assert len(result.stderr_tail) <= 2000 and "noise line 0\n" not in result.stderr_tail


async def test_failed_command_with_output_is_still_a_failure(project: Project) -> None:
    result = await run_pull('echo \'[{"id":"1","title":"t","state":"s"}]\'; exit 1', project.root, 60)
    assert not result.ok and result.issues == [] and result.error == "pull command exited with code 1"


async def test_command_not_found(project: Project) -> None:
    result = await run_pull("definitely-not-a-tracker-cli list", project.root, 60)
    assert result.exit_code == 127 and "not found" in (result.error or "")


async def test_command_killed_by_a_signal(project: Project) -> None:
    result = await run_pull("kill -9 $$", project.root, 60)
    assert result.exit_code == -9 and result.error == "pull command was killed by signal 9 (SIGKILL)"


async def test_missing_working_directory(project: Project, tmp_path: Path) -> None:
    result = await run_pull("echo []", tmp_path / "gone", 60)
    assert not result.ok and "could not start" in (result.error or "") and "gone" in (result.error or "")


async def test_hanging_command_times_out_and_its_group_dies(project: Project, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 1000 & echo $! > {shlex.quote(str(pids))}; sh -c 'sleep 1000' & wait"
    started = time.monotonic()
    result = await run_pull(script, project.root, 2)  # 2 s: the script writes its pid first, even under load
    assert time.monotonic() - started < 30  # bounded: nowhere near `sleep 1000`
    assert not result.ok and result.error == "pull command timed out after 2s (process group killed)"
    grandchild = int(pids.read_text())
    assert dead(grandchild)


async def test_timeout_also_kills_children_that_ignore_sigterm(project: Project, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"(trap '' TERM; sleep 1000) & echo $! > {shlex.quote(str(pids))}; wait"
    result = await run_pull(script, project.root, 2)  # 2 s: the script writes its pid first, even under load
    assert result.error and "timed out" in result.error
    assert dead(int(pids.read_text()))


async def test_background_child_holding_stdout_does_not_hang_the_pull(project: Project, tmp_path: Path) -> None:
    """The command prints its issues and exits; a child it left behind keeps stdout open."""
    pids = tmp_path / "pids"
    script = f'sleep 1000 & echo $! > {shlex.quote(str(pids))}; echo \'[{{"id":"1","title":"t","state":"s"}}]\''
    started = time.monotonic()
    result = await run_pull(script, project.root, 120)
    assert time.monotonic() - started < 60  # not the 120 s timeout
    assert result.ok and [i.id for i in result.issues] == ["1"]
    assert dead(int(pids.read_text()))
