"""`notify.command`: attention events only, the event's JSON on stdin, bounded in time and
output; a hanging, flooding, failing or missing command is logged and stops nothing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Project, base_workflow, process_running
from engine_helpers import Harness

from vik_tui.config.loader import load_workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.notify import OUTPUT_LIMIT


def failing(project: Project, command: str, **notify: object) -> dict:
    project.set_issues([{"id": "A", "title": "a", "state": "todo"}, {"id": "B", "title": "b", "state": "done"}])
    wf = base_workflow(project)
    wf["loop"]["retry"] = {"max_attempts": 1}
    wf["agents"]["codex"]["args"] = {"--mode": "turn_failed"}
    wf["notify"] = {"command": command, **notify}
    return wf


async def test_a_given_up_stage_notifies_with_its_json_and_completions_do_not(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "notified.jsonl"
    wf = failing(project, f"cat >> {out}")
    wf["issue"]["stages"]["ok"] = {"when": {"state": "done"}, "agent": "codex", "prompt": "fine"}
    wf["agents"]["fine"] = dict(wf["agents"]["codex"], args={})
    wf["issue"]["stages"]["ok"]["agent"] = "fine"
    h = Harness(project.write(wf)).start()
    assert await h.finish() == 0  # the notifier sends what is queued before run() returns
    assert sorted((f.issue, f.state) for f in h.named(ee.StageFinished)) == [("A", "failed"), ("B", "completed")]
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["event"] for s in sent] == ["retry_given_up"]  # B's completion is routine: nothing
    assert sent[0]["issue"] == "A" and sent[0]["summary"].startswith("A/plan given up after 1 attempt")
    assert sent[0]["workflow"] == str(project.workflow_path)


async def test_a_hanging_notify_command_is_killed_at_its_timeout_and_logged(project: Project, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    wf = failing(project, f"echo $$ > {pid_file}; exec sleep 300", timeout_sec=1)
    h = Harness(project.write(wf)).start()
    assert await h.finish(timeout=30) == 0
    logged = [e.message for e in h.named(ee.Log) if e.message.startswith("notify")]
    assert logged == ["notify (retry_given_up) failed: timed out after 1s (notify.timeout_sec); killed"]
    assert not process_running(int(pid_file.read_text()))


async def test_a_notify_command_printing_a_gigabyte_is_cut_and_killed(project: Project) -> None:
    wf = failing(project, "head -c 1000000000 /dev/zero | tr '\\0' x")
    h = Harness(project.write(wf)).start()
    assert await h.finish(timeout=60) == 0
    logged = [e.message for e in h.named(ee.Log) if e.message.startswith("notify")]
    assert len(logged) == 1 and f"printed more than {OUTPUT_LIMIT} bytes; killed" in logged[0]
    assert len(logged[0]) < 1000  # only a tail of what it printed reaches the log


async def test_a_missing_notify_command_is_logged_and_stops_nothing(project: Project) -> None:
    wf = failing(project, "/nonexistent/notify-me --please")
    h = Harness(project.write(wf)).start()
    assert await h.finish() == 0
    logged = [e.message for e in h.named(ee.Log) if e.message.startswith("notify")]
    assert len(logged) == 1 and "exited with code 127" in logged[0] and "not found" in logged[0]


async def test_intake_failing_n_cycles_notifies_once_per_streak(project: Project, tmp_path: Path) -> None:
    """Pulls 1, 2, 4, 5, 6 fail and 3 is good: two streaks, each said once, when it reaches 2."""
    out = tmp_path / "notified.jsonl"
    counter = tmp_path / "pulls"
    pull = (
        f"n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}; "
        "if [ $n -eq 3 ]; then echo '[]'; else echo 'this is not JSON'; fi"
    )
    wf = base_workflow(project)
    wf["issues"]["pull"]["command"] = pull
    wf["loop"]["max_iterations"] = 6
    wf["notify"] = {"command": f"cat >> {out}", "intake_failures": 2}
    h = Harness(project.write(wf)).start()
    assert await h.finish() == 0
    failed = h.named(ee.IntakeFailed)
    assert [(e.iteration, e.failures, e.attention) for e in failed] == [
        (1, 1, False),
        (2, 2, True),
        (4, 1, False),
        (5, 2, True),
        (6, 3, False),
    ]
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(s["event"], s["iteration"], s["failures"]) for s in sent] == [
        ("intake_failed", 2, 2),
        ("intake_failed", 5, 2),
    ]
    assert sent[0]["attention"] is True and sent[0]["summary"].startswith("intake failed 2 times in a row: ")


def test_doctor_checks_the_notify_section(project: Project) -> None:
    project.set_issues([])
    wf = base_workflow(project)
    wf["notify"] = {"command": "definitely-not-a-program-xyz --hook", "timeout_sec": 0, "intake_failures": -1}
    result = load_workflow(project.write(wf))
    errors = {d.pointer: d.message for d in result.errors}
    warnings = {d.pointer: d.message for d in result.warnings}
    assert errors["notify.timeout_sec"] == "must be greater than 0 (got 0)"
    assert errors["notify.intake_failures"] == "must be greater than 0 (got -1)"
    assert "`definitely-not-a-program-xyz` not found on PATH" in warnings["notify.command"]
    wf["notify"] = {"command": "  "}
    result = load_workflow(project.write(wf))
    assert any(d.pointer == "notify.command" and "empty" in d.message for d in result.errors)
