"""The real app in a real terminal, measured: tmux runs it, keys go in with send-keys, and the
screen is polled with capture-pane until it shows the result (benchmarks/tmux_screen.py).

- j/k: the pane shows the newly selected issue and one of its sessions, and never says "No
  session yet" on the way for an issue that has sessions.
- a (take over): the fake CLI is reopened with `resume <its session id>` in the issue's
  workspace, in a tmux split inside tmux and in the foreground (app suspended) outside it.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from big_tracker import write_big_tracker  # noqa: E402
from tmux_screen import TmuxApp, listed_ids, pane_issue, pct, shows_session, walk  # noqa: E402

from vik_tui.engine.stages.replay import read_session_records  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")


def app_command(workflow: Path, *, outside_tmux: bool = False) -> str:
    prefix = "env -u TMUX " if outside_tmux else ""
    return f"{prefix}{shlex.quote(sys.executable)} -m vik_tui --no-bell {shlex.quote(str(workflow))}"


def quit_app(app: TmuxApp) -> None:
    app.keys("q")
    text = app.wait(lambda s: ("stop" in s and "quit?" in s) or pane_issue(s) is None, "the quit question or exit")
    if "quit?" in text:
        app.keys("y")


def test_j_and_k_switch_panes_at_once_without_a_placeholder(tmp_path: Path) -> None:
    workflow = write_big_tracker(tmp_path / "big", issues=2000, active=6, seconds=120, interval=0.1)
    app = TmuxApp(app_command(workflow), cols=160, rows=45)
    try:
        app.start()
        app.wait(lambda s: len(listed_ids(s)) == 6 and "backlog 1,994" in s, "six issues and the backlog line")
        app.wait(lambda s: "running 6/6" in s and shows_session(s), "six agents streaming", timeout=60)
        switches = walk(app, 5, pause=0.1)
        assert len(switches) == 10
        assert [s.flashes for s in switches] == [0] * 10, switches
        times = [s.seconds for s in switches]
        print(f"j/k -> pane shows the issue: p50 {pct(times, 0.5) * 1000:.0f} ms, p95 {pct(times, 0.95) * 1000:.0f} ms")
        # no wall-clock assertion here: `benchmarks/ui_stream.py` measures and reports the latency
        quit_app(app)
    finally:
        app.kill()


@pytest.mark.parametrize("where", ["tmux split", "suspended app"])
def test_take_over_reopens_the_agents_session_in_its_workspace(tmp_path: Path, where: str) -> None:
    workflow = write_big_tracker(tmp_path / "w", issues=3, active=1, seconds=0.2, interval=0.05)
    record = tmp_path / "argv.json"
    app = TmuxApp(
        app_command(workflow, outside_tmux=where == "suspended app"),
        cols=140,
        rows=40,
        env={"FAKE_ARGV_OUT": str(record)},
    )
    try:
        app.start()
        app.wait(lambda s: "work #1 · completed" in s, "the stage completed", timeout=60)
        app.keys("a")
        for _ in range(2):  # wait for the fake's record (it runs in a split or in the foreground)
            try:
                app.wait(lambda _s: record.exists() and record.read_text().strip() != "", "the take-over", timeout=20)
                break
            except RuntimeError:
                app.keys("a")
        data = json.loads(record.read_text())
        session_file = next((tmp_path / "w" / ".vik").glob("workflows/*/sessions/ISSUE-00000/work-*.jsonl"))
        thread_id = read_session_records(session_file)[0].session_id  # type: ignore[attr-defined]
        assert data["argv"] == ["resume", "-m", "gpt-5.5", thread_id]
        assert Path(data["cwd"]).name == "ISSUE-00000" and Path(data["cwd"]).parent.name == "issues"
        app.wait(lambda s: "work #1 · completed" in s, "the app back on screen")
        quit_app(app)
    finally:
        app.kill()
