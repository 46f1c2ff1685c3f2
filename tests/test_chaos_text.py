"""Issue #18, items 2, 5 and 14 (NUL, U+202E): every writer of logs, session files and the
terminal takes any text (lone surrogates, NUL, control codes, markup) and writes it safely, and
no log or listener failure escapes `Supervisor.emit`."""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path

from chaos_helpers import HeadlessProcess, chaos_workflow, last_outcome, layout_of, records
from conftest import Project
from test_tmux_e2e import Tmux

HOSTILE = "[/]\x1b]2;PWNED\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b[6n[bold red]x[/bold red] \ud800 \u202e evil\x00nul"

BAD_ID = "bad-\ud800"  # valid JSON (`"\ud800"`), not valid Unicode text


def _log_lines(workflow_path: Path) -> list[dict[str, object]]:
    logs = sorted(layout_of(workflow_path).logs_dir.glob("vik.log.*"))
    assert logs, "no daily log written"
    return [json.loads(line) for path in logs for line in path.read_bytes().splitlines()]


def _start_in_tmux(tmux: Tmux, size: tuple[int, int], args: str, done: Path) -> None:
    """`python -m vik_tui ARGS` in the tmux session `vik`; its exit code lands in `done` and the
    pane stays open after it (for the screen to be read)."""
    command = f"{shlex.quote(sys.executable)} -m vik_tui {args}; echo $? > {done}; exec sleep 600"
    tmux.run("new-session", "-d", "-s", "vik", "-x", str(size[0]), "-y", str(size[1]), "sh", "-c", command)


def test_a_lone_surrogate_in_an_id_or_a_state_does_not_stop_the_supervisor(project: Project) -> None:
    wf = chaos_workflow(project, "talk", seconds=60)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 1
    issues = [
        {"id": BAD_ID, "title": "surrogate id", "state": "todo"},
        {"id": "C-1", "title": "title \ud800 with NUL \x00 and [/] markup", "state": "todo"},
    ]
    project.set_issues(json.dumps(issues))  # json.dumps writes `\ud800`, as a tracker would
    sup = HeadlessProcess(project.write(wf))
    rejected = sup.wait_event("issue_rejected")
    assert "lone surrogate" in rejected["reason"]
    started = sup.wait_event("stage_started")
    # a state change mid-run: reported (issue_moved), and the agent runs on
    project.set_issues(json.dumps([{"id": "C-1", "title": "t", "state": "odd \ud800 state"}]))
    moved = sup.wait_event("issue_moved")
    assert moved["state"] == "odd \ud800 state"
    sup.wait_event("intake", iteration=3)  # still pulling after it
    sup.signal(signal.SIGTERM)
    assert sup.wait() == 0, sup.stderr()
    finished = sup.named("stage_finished")[0]
    assert finished["state"] == "cancelled" and finished["reason"] == "supervisor shutting down", finished
    assert last_outcome(Path(started["session_file"]))["state"] == "cancelled"
    logged = _log_lines(project.workflow_path)
    assert any(r.get("event") == "issue_rejected" and r.get("id") == BAD_ID for r in logged)
    assert any(r.get("event") == "issue_moved" and r.get("state") == "odd \ud800 state" for r in logged)
    assert any(r.get("event") == "supervisor_stopped" for r in logged)


def test_hostile_agent_text_is_written_whole_to_the_session_file_and_the_log(project: Project) -> None:
    wf = chaos_workflow(project, "hostile")
    sup = HeadlessProcess(project.write(wf))
    finished = sup.wait_event("stage_finished", timeout=60)
    assert sup.wait() == 0, sup.stderr()
    assert finished["state"] == "completed", finished
    session = Path(finished["session_file"])
    texts = [r.get("text") for r in records(session)]  # whole JSON lines; the surrogate as `\ud800`
    assert HOSTILE in texts, texts
    assert last_outcome(session)["state"] == "completed"


def test_run_in_text_mode_prints_agent_control_sequences_as_text(project: Project, tmp_path: Path) -> None:
    """In a real terminal (tmux): the failure reason carries the agent's stderr, escapes and all."""
    wf = chaos_workflow(project, "hostile", fail=True)
    path = project.write(wf)
    done = tmp_path / "exit_code"
    tmux = Tmux()
    try:
        _start_in_tmux(tmux, (200, 50), f"run --no-watch {shlex.quote(str(path))}", done)
        tmux.wait(lambda: done.exists() and done.read_text().strip(), "vik-tui run to end", timeout=60)
        screen = tmux.wait_screen(lambda s: "supervisor stopped" in s, "the last line")
        title = tmux.run("display-message", "-p", "-t", "vik", "#{pane_title}").strip()
        assert "PWNED" not in title  # OSC 2 not obeyed
        assert "C-1/plan FAILED" in screen  # not cleared by ESC [2J
        assert "\\x1b]2;PWNED\\x07" in screen and "\\x1b[6n" in screen, screen
        assert "\\u202e" in screen
    finally:
        tmux.kill()


def test_the_ui_shows_hostile_ids_titles_and_reasons_as_text(project: Project, tmp_path: Path) -> None:
    """The real app in a real terminal: a valid id with markup in it, a title with a lone
    surrogate, U+202E and markup, and a failure reason carrying the agent's hostile stderr."""
    wf = chaos_workflow(project, "hostile", fail=True)
    wf["loop"]["max_iterations"] = None
    wf["issues"]["pull"]["idle_sec"] = 60
    wf["loop"]["retry"] = {"max_attempts": 3, "backoff_sec": 600, "max_backoff_sec": 600}  # the toast says why
    issues = [{"id": "[a=1=2]x", "title": "[/]title \ud800 \u202e [bold]b", "state": "todo"}]
    project.set_issues(json.dumps(issues))
    path = project.write(wf)
    done = tmp_path / "exit_code"
    tmux = Tmux()
    try:
        _start_in_tmux(tmux, (160, 45), f"--no-watch {shlex.quote(str(path))}", done)
        screen = tmux.wait_screen(lambda s: "[a=1=2]x/plan failed" in s, "the failure toast", timeout=90)
        screen = tmux.wait_screen(lambda s: "[bold red]x" in s, "the reason in the toast, as text")
        assert not done.exists(), screen  # the app is still up
        assert "PWNED" not in tmux.run("display-message", "-p", "-t", "vik", "#{pane_title}")
        assert "[/]title \\ud800 \\u202e [bold]b" in screen, screen  # U+202E shown, not obeyed
        assert "\u202e" not in screen
        tmux.run("send-keys", "-t", "vik", "q")
        tmux.wait_screen(lambda s: "quit" in s.lower() or done.exists(), "the quit prompt or the exit")
        if not done.exists():
            tmux.run("send-keys", "-t", "vik", "y")
        tmux.wait(lambda: done.exists() and done.read_text().strip(), "the app to exit")
        assert done.read_text().strip() == "0"
    finally:
        tmux.kill()


def test_nul_in_a_title_reaches_hooks_and_prompts_as_text(project: Project) -> None:
    """Item 14: NUL in tracker text failed the stage as `internal error: ValueError: embedded null byte`."""
    wf = chaos_workflow(project, "complete")
    wf["issue"]["hooks"] = {"after_create": "printf '%s' {{ issue.title | shquote }} > title.txt"}
    project.set_issues(json.dumps([{"id": "C-1", "title": "a\x00b \ud800", "state": "todo"}]))
    sup = HeadlessProcess(project.write(wf))
    finished = sup.wait_event("stage_finished", timeout=60)
    assert sup.wait() == 0, sup.stderr()
    assert finished["state"] == "completed", finished
    title = layout_of(project.workflow_path).issues_dir / "C-1" / "title.txt"
    assert title.read_text(encoding="utf-8") == "a\ufffdb \ufffd"
