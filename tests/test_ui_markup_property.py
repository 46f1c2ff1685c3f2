"""Issue #18, item 3: every text the UI shows from outside (issue ids, titles, states, stage
names, failure reasons, agent text, engine messages, the lock holder) is shown as text, never
parsed as markup, on every screen and in every toast.

A real Supervisor runs a real fake agent (`tests/fakes/chaos_agent --mode say`) that says the
hostile text and fails with it on stderr, so the reason, the retry queue, the toasts and the
session come from the engine as they would in use. Pilot then opens every screen. What is
checked on each: the app keeps running, every text on the screen (static texts and their
markup, border titles, log lines, table cells, toasts) holds no style, link or action that
came from outside and no control character, and the outside text is there whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaos_helpers import chaos_workflow
from conftest import Project, wait_on_screen
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.text import Text
from scripted_engine import snapshot
from textual.content import Content
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Log, RichLog, Static

from vik_tui.config.ids import unsafe_id_reason
from vik_tui.config.loader import load_workflow
from vik_tui.engine.service.state import WorkflowLock
from vik_tui.engine.supervisor import Supervisor
from vik_tui.engine.view import (
    HoldKind,
    HoldView,
    HostView,
    IntakeStatus,
    IntakeView,
    RateLimitView,
    RetryView,
    RunStatus,
    RunView,
)
from vik_tui.ui.app import DiagnosticsApp, VikApp
from vik_tui.ui.glyphs import UNICODE
from vik_tui.ui.screens.confirm import ConfirmScreen
from vik_tui.ui.screens.diff import DiffScreen
from vik_tui.ui.screens.help import HelpScreen
from vik_tui.ui.screens.queue import QueueScreen, queue_markup
from vik_tui.ui.screens.reader import ReaderScreen
from vik_tui.ui.text import one_line, sanitize
from vik_tui.ui.widgets.stage_panes import StagePanes
from vik_tui.ui.widgets.status_line import render_status

SIZE = (150, 40)
WORD_JOINER = "\u2060"  # `text.markup_text` puts it after a trailing backslash (invisible)
# the brief's hostile pieces: markup (closing tags, a style with two `=`, a click action, a link,
# an escaped bracket, theme variables, a tag Textual's `escape` leaves alone), terminal escapes
# (clear, OSC 52 clipboard, OSC 2 title), carriage return, backspace, NUL, a lone surrogate,
# U+202E, and one very long piece
MARKUP = [
    "[/]",
    "[b]x[/b]",
    "[a=1=2]x",
    "[@click=app.quit]x[/]",
    "[ @click=app.quit]x",
    "[link=file:///etc/passwd]x[/]",
    "\\[",
    "\\",
    "[$error]x",
    "[A=1]x",
    "[",
    "]",
    "$text",
]
CONTROLS = ["\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x1b]2;PWNED\x07", "\r", "\b", "\x00", "\ud800", "\u202e", "\n"]
LONG = "[b]" + "long " * 800
HOSTILE = st.lists(
    st.one_of(st.sampled_from([*MARKUP, *CONTROLS, LONG]), st.text(max_size=12)), min_size=1, max_size=6
).map("".join)
# ids and stage names name files, so the engine takes only safe ones (`unsafe_id_reason`): markup
# and bidi controls still pass
NAME = (
    st.lists(
        st.one_of(
            st.sampled_from([m for m in MARKUP if "/" not in m and "\\" not in m] + ["\u202e"]),
            st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=4,
    )
    .map("".join)
    .filter(lambda name: unsafe_id_reason(name) is None)
)
SHOWN_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


# -- what the screen shows ---------------------------------------------------------------------
def _texts(app: VikApp) -> list[str | Content]:
    """Every text on the screen on top: static contents (as the Content their markup made),
    border titles, log lines, table cells and toasts. Textual's own footer is left out."""
    shown: list[str | Content] = []
    screen = app.screen
    widgets: list[Widget] = [screen, *screen.walk_children(with_self=False)]
    for widget in widgets:
        if isinstance(widget, Footer) or any(isinstance(a, Footer) for a in widget.ancestors):
            continue
        for title in (widget._border_title, widget._border_subtitle):
            if title is not None:
                shown.append(title)
        if isinstance(widget, Static):
            visual = widget.render()
            if isinstance(visual, Content | str):
                shown.append(visual)
            elif isinstance(visual, Text):
                shown.append(visual.plain)
        elif isinstance(widget, Log):
            shown.extend(widget.lines)
        elif isinstance(widget, RichLog):
            shown.extend(strip.text for strip in widget.lines)
        elif isinstance(widget, DataTable):
            for row in range(widget.row_count):
                shown.extend(cell.plain if isinstance(cell, Text) else str(cell) for cell in widget.get_row_at(row))
    return shown


def _check_screen(app: VikApp, *expected: str) -> str:
    """The app runs; nothing on screen carries a style, link or action from outside or a control
    character; every `expected` text is on it whole. Returns the screen's plain text."""
    assert app._exception is None, app._exception
    assert app.is_running and app.return_code is None
    plain: list[str] = []
    for text in _texts(app):
        if isinstance(text, Content):
            for span in text.spans:
                style = repr(span.style)
                assert "@click" not in style and "link" not in style, (text, span)
            text = text.plain
        assert not SHOWN_CONTROL.search(text), repr(text)
        plain.append(text)
    joined = "\n".join(plain).replace(WORD_JOINER, "")
    for piece in expected:
        assert piece in joined, f"{piece!r} is not on {type(app.screen).__name__}:\n{joined}"
    return joined


def _toasts(app: VikApp) -> list[tuple[str, str]]:
    for notification in app._notifications:
        assert not notification.markup, notification
    return [(n.title, n.message) for n in app._notifications]


# -- a real supervisor that says and fails with hostile text ------------------------------------
class Case:
    """One example: the tracker, the workflow (stage `stage` on state `state`) and the agent's text."""

    def __init__(
        self, root: Path, issue_id: str, title: str, state: str, stage: str, text: str, other: str = "O-1"
    ) -> None:
        self.issue_id, self.title, self.state, self.stage, self.text = issue_id, title, state, stage, text
        project = Project(root)
        text_file = root / "agent-text.json"
        text_file.write_text(json.dumps(text))
        wf = chaos_workflow(project, "say", text_file=str(text_file), fail=True)
        wf["loop"].update(max_iterations=None, retry={"max_attempts": 2, "backoff_sec": 600, "max_backoff_sec": 600})
        wf["issues"]["pull"]["idle_sec"] = 60
        wf["issue"]["stages"] = {stage: {**wf["issue"]["stages"]["plan"], "when": {"state": state}}}
        # the second record: a hostile id the engine rejects (a row with its reason) or takes; in
        # the same state as the first when it is hostile, so both may fail (one merged toast)
        project.set_issues(
            json.dumps(
                [
                    {"id": issue_id, "title": title, "state": state},
                    {"id": other, "title": title, "state": state if other != "O-1" else "elsewhere"},
                ]
            )
        )
        self.path = project.write(wf)

    def supervisor(self) -> Supervisor:
        result = load_workflow(self.path)
        assert result.ok and result.workflow is not None, [d.render() for d in result.diagnostics]
        return Supervisor(result.workflow, result.path, watch=False)


def _run(app: VikApp, issue_id: str, stage: str) -> RunView | None:
    issue = app.engine.snapshot().find_issue(issue_id)
    return issue.run_of(stage) if issue else None


async def _failed(pilot: Pilot[Any], app: VikApp, issue_id: str, stage: str) -> RunView:
    """Once the stage has failed and the screen says so: its run (the pane shows its session)."""
    failed = (RunStatus.RETRY_WAIT, RunStatus.FAILED)
    await wait_on_screen(pilot, lambda: (r := _run(app, issue_id, stage)) and r.status in failed, "the failure")
    await wait_on_screen(pilot, lambda: _toasts(app), "the failure toast")
    panes = app.main.query_one(StagePanes)
    await wait_on_screen(pilot, lambda: panes.active_session_uuid() and panes.settled(), "the session text")
    await wait_on_screen(pilot, lambda: "failed" in str(panes.info.render()), "the failure in the pane")
    run = _run(app, issue_id, stage)
    assert run is not None and run.session is not None
    return run


async def _open(pilot: Pilot[Any], app: VikApp, key: str, screen: type[Any]) -> None:
    await pilot.press(key)
    await wait_on_screen(pilot, lambda: isinstance(app.screen, screen), screen.__name__)


async def _close(pilot: Pilot[Any], app: VikApp) -> None:
    await pilot.press("escape")
    await wait_on_screen(pilot, lambda: app.screen is app.main, "the main screen again")


async def _quit(pilot: Pilot[Any], app: VikApp) -> None:
    await pilot.press("q")
    await wait_on_screen(pilot, lambda: isinstance(app.screen, ConfirmScreen) or app.quitting, "the quit question")
    if isinstance(app.screen, ConfirmScreen):
        await pilot.press("y")
    await wait_on_screen(pilot, lambda: app.engine_done, "the supervisor to stop")


async def _drive(case: Case) -> None:
    issue_id, stage = case.issue_id, case.stage
    app = VikApp(case.supervisor(), bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        run = await _failed(pilot, app, issue_id, stage)
        assert run.session is not None
        reason = run.session.reason or ""
        # the list, the pane's title, tab and info line, the failure toast
        _check_screen(
            app,
            one_line(issue_id, 24),
            f"{one_line(issue_id, 30)} {one_line(case.title, 80)} · {one_line(case.state, 30)}",
            f"{one_line(stage, 40)} #1",
            one_line(reason, 160),
        )
        where = sanitize(f"{issue_id}/{stage}")[:60]
        assert any(where in title or where in message for title, message in _toasts(app)), _toasts(app)
        # `t`: the retry queue says where and why
        if run.status == RunStatus.RETRY_WAIT:
            await _open(pilot, app, "t", QueueScreen)
            _check_screen(app, one_line(f"{issue_id}/{stage}", 22).strip(), one_line(reason, 80))
            await _close(pilot, app)
        # `e`: the whole session, agent text and all
        await _open(pilot, app, "e", ReaderScreen)
        reader = app.screen
        assert isinstance(reader, ReaderScreen)
        await wait_on_screen(pilot, lambda: reader.lines, "the session read")
        _check_screen(app, sanitize(issue_id))
        await _close(pilot, app)
        for key, screen in (("question_mark", HelpScreen), ("d", DiffScreen)):
            await _open(pilot, app, key, screen)
            _check_screen(app)
            await _close(pilot, app)
        # `c`: the question names the issue and stage; the answer's toast is the engine's text
        if run.status == RunStatus.RETRY_WAIT:
            await _open(pilot, app, "c", ConfirmScreen)
            _check_screen(app, sanitize(issue_id), sanitize(stage))
            await pilot.press("y")
            await wait_on_screen(pilot, lambda: app.screen is app.main, "the answer")
            await wait_on_screen(pilot, lambda: _run(app, issue_id, stage).status == RunStatus.CANCELLED, "cancel")
        await pilot.press("c")  # a finished stage: a toast says it is not running
        await wait_on_screen(pilot, lambda: any("not running" in m for _t, m in _toasts(app)), "nothing to cancel")
        _check_screen(app)
        await pilot.press("r")  # the engine's answer in a toast; a new attempt says it all again
        await wait_on_screen(pilot, lambda: len(_run(app, issue_id, stage).history) == 2, "the second attempt")
        for key in ("exclamation_mark", "b", "exclamation_mark", "b"):
            await pilot.press(key)
            await pilot.pause()
            _check_screen(app)
        await _quit(pilot, app)
    assert app.return_code == 0 and app._exception is None


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(issue_id=NAME, stage=NAME, title=HOSTILE, state=HOSTILE, text=HOSTILE, other=HOSTILE)
def test_outside_text_is_shown_as_text_on_every_screen_and_toast(
    issue_id: str, stage: str, title: str, state: str, text: str, other: str
) -> None:
    state = state.translate({code: None for code in range(0xD800, 0xE000)})  # a state is also in the YAML
    assume(state and yaml.safe_load(yaml.safe_dump(state)) == state)
    assume(other != issue_id)
    with tempfile.TemporaryDirectory() as tmp:
        case = Case(Path(tmp), issue_id, title, state, stage, text, other)
        assume(load_workflow(case.path).ok)
        asyncio.run(_drive(case))


# the brief's cases as they are: each on its own, whole, in every place at once
PRINTABLE = [
    "[/]",
    "[b]x[/b]",
    "[a=1=2]x",
    "[@click=app.quit]x[/]",
    "[link=file:///etc/passwd]x[/]",
    "\\[",
    "[$error]x",
    "[ b]x",
    "ends with a backslash \\",
]


@pytest.mark.parametrize("hostile", PRINTABLE)
async def test_printable_markup_is_shown_literally(hostile: str, tmp_path: Path) -> None:
    """Printable text is shown exactly as it is: in the list, the pane's title, the info line,
    the queue, the reader's title and the toasts."""
    issue_id = hostile.replace("/", "|").replace("\\", "|")  # an id: no path separator
    case = Case(tmp_path, issue_id, hostile, hostile, "plan", hostile)
    app = VikApp(case.supervisor(), bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _failed(pilot, app, issue_id, "plan")
        panes = app.main.query_one(StagePanes)
        assert panes._border_title is not None
        # (a trailing backslash is followed by an invisible word joiner: `text.markup_text`)
        assert panes._border_title.plain.replace(WORD_JOINER, "") == f"{issue_id} {hostile} · {hostile}"
        assert not panes._border_title.spans
        shown = _check_screen(app, issue_id, hostile)
        assert hostile in str(panes.info.render()).replace(WORD_JOINER, ""), shown  # the reason: the agent's stderr
        await wait_on_screen(pilot, lambda: any(f"{issue_id}/plan failed" == t for t, _m in _toasts(app)), "the toast")
        assert any(hostile in message for _t, message in _toasts(app))
        toast = f"{issue_id}/plan failed\nexited with code 3; stderr: {hostile}"
        await wait_on_screen(pilot, lambda: toast in _check_screen(app), "the toast on screen")
        await _open(pilot, app, "t", QueueScreen)
        _check_screen(app, f"{issue_id}/plan"[:21], hostile[:40])
        await _close(pilot, app)
        await _open(pilot, app, "e", ReaderScreen)
        _check_screen(app, f"{issue_id} · plan #1")
        await _close(pilot, app)
        await _open(pilot, app, "c", ConfirmScreen)
        _check_screen(app, f"Cancel the pending retry of stage plan of {issue_id}?")
        await pilot.press("y")
        await wait_on_screen(pilot, lambda: _run(app, issue_id, "plan").status == RunStatus.CANCELLED, "cancel")
        await pilot.press("c")
        await wait_on_screen(pilot, lambda: any("not running" in m for _t, m in _toasts(app)), "nothing to cancel")
        assert any(m.startswith(f"{issue_id}/plan is not running") for _t, m in _toasts(app))
        _check_screen(app)
        await _quit(pilot, app)
    assert app.return_code == 0


@pytest.mark.parametrize("title", ["[@click=app.quit]click me[/]", "[ @click=app.quit]click me[/]"])
async def test_a_click_action_in_a_title_or_an_id_does_nothing_when_clicked(title: str, tmp_path: Path) -> None:
    """The pane's title (issue id, title, state) and the reader's title (the id): clicked along
    their whole width (every third column: the action spans eight or more), the app does not quit."""
    issue_id = title.replace("/", "")  # a valid id: no path separator
    case = Case(tmp_path, issue_id, title, "todo", "plan", "said")
    app = VikApp(case.supervisor(), bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _failed(pilot, app, issue_id, "plan")
        panes = app.main.query_one(StagePanes)
        assert panes._border_title is not None
        region = panes.region  # the title is on the top border, after its corner and a space
        for x in range(region.x, min(region.right, region.x + 4 + len(panes._border_title.plain)), 3):
            await pilot.click(offset=(x, region.y))
            assert app.is_running and app.return_code is None and not app.quitting, f"quit by a click at x={x}"
        await _open(pilot, app, "e", ReaderScreen)
        heading = app.screen.query_one(".dialog-title", Static)
        await wait_on_screen(pilot, lambda: heading.region.width, "the reader's title")
        for x in range(heading.region.x, heading.region.x + 4 + len(issue_id), 3):
            await pilot.click(offset=(x, heading.region.y))
            assert app.is_running and app.return_code is None and not app.quitting, f"quit by a click at x={x}"
        await _close(pilot, app)
        await _quit(pilot, app)
    assert app.return_code == 0


async def test_the_exit_message_is_printed_as_text(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """A second supervisor on a locked workflow exits with a message naming the holder (its
    cwd is outside text): printed after the terminal is restored as it is, not as Rich markup
    (`[a=1=2]` raised there) and with no terminal escape."""
    case = Case(project.root, "A-1", "t", "todo", "plan", "said")
    sup = case.supervisor()
    lock = WorkflowLock(sup.layout.lock_file)
    cwd = "/tmp/[a=1=2]x [bold]b[/bold] \x1b]2;PWNED\x07 [@click=app.quit]q[/]"
    lock.acquire({"pid": 4242, "started_at": "earlier", "cwd": cwd})
    try:
        app = VikApp(sup, bell=False)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_on_screen(pilot, lambda: app.exit_message is not None, "the lock failure")
    finally:
        lock.release()
    assert app.return_code == 1
    printed = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "cwd /tmp/[a=1=2]x [bold]b[/bold] \\x1b]2;PWNED\\x07 [@click=app.quit]q[/]" in printed, printed
    assert "\x1b" not in printed


async def test_a_search_for_markup_in_the_reader_says_so_as_text(tmp_path: Path) -> None:
    """The reader's "no match" toast quotes what was typed: `[/]` is text there too."""
    case = Case(tmp_path, "S-1", "search", "todo", "plan", "said")
    app = VikApp(case.supervisor(), bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _failed(pilot, app, "S-1", "plan")
        await _open(pilot, app, "e", ReaderScreen)
        reader = app.screen
        assert isinstance(reader, ReaderScreen)
        await wait_on_screen(pilot, lambda: reader.lines, "the session read")
        await pilot.press("slash", "left_square_bracket", "slash", "right_square_bracket", "enter")
        await wait_on_screen(pilot, lambda: "no match for '[/]'" in _check_screen(app), "the toast on screen")
        await _close(pilot, app)
        await _quit(pilot, app)
    assert app.return_code == 0


async def test_control_characters_are_shown_as_escapes(tmp_path: Path) -> None:
    """A title and an agent's stderr with terminal escapes, NUL and backspace: each is on the
    screen as its escape (what was sent, visibly), none reaches the terminal; colours go."""
    hostile = "a\x1b]52;c;cHduZWQ=\x07b\x00c\bd\x1b[2J\x1b[31mred\x1b[0m"
    shown = "a\\x1b]52;c;cHduZWQ=\\x07b\\x00c\\x08d\\x1b[2Jred"
    case = Case(tmp_path, "E-1", hostile, "todo", "plan", hostile)
    app = VikApp(case.supervisor(), bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _failed(pilot, app, "E-1", "plan")
        panes = app.main.query_one(StagePanes)
        assert panes._border_title is not None and panes._border_title.plain == f"E-1 {shown} · todo"
        await wait_on_screen(pilot, lambda: f"stderr: {shown}" in _check_screen(app, shown), "the toast on screen")
        await _quit(pilot, app)
    assert app.return_code == 0


async def test_workflow_findings_quote_the_file_as_text(project: Project) -> None:
    """The diagnostics screen quotes the workflow's own keys and values: an unknown key full of
    markup is shown as it is written."""
    key = "[$error]x [ b]y [A=1]z [/] \\"
    data = yaml.safe_load(Case(project.root, "A-1", "t", "todo", "plan", "said").path.read_text())
    data["loop"][key] = 1
    data["issue"]["stages"]["plan"]["agent"] = "[ @click=app.quit]nobody"
    result = load_workflow(project.write(data))
    assert not result.ok
    app = DiagnosticsApp(result)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        findings = await wait_on_screen(pilot, lambda: app.screen.query("#findings-text"), "the findings")
        text = findings.first(Static).render()
        assert isinstance(text, Content)
        plain = text.plain.replace(WORD_JOINER, "")
        assert f"loop.{key}" in plain and "agent `[ @click=app.quit]nobody`" in plain, plain
        assert all("@click" not in repr(span.style) for span in text.spans), text.spans
        await pilot.press("q")
    assert app.return_code == 1


# -- the header and the queue over every field at once: what no local engine can produce here
# (SSH host names, provider rate-limit scopes, an attached UI's connection note) ----------------
@settings(max_examples=100, deadline=None)
@given(name=HOSTILE, host=HOSTILE, scope=HOSTILE, resets=HOSTILE, error=HOSTILE, note=HOSTILE, where=NAME, why=HOSTILE)
def test_the_header_and_the_queue_show_every_field_as_text(
    name: str, host: str, scope: str, resets: str, error: str, note: str, where: str, why: str
) -> None:
    resets = "at " + resets  # an empty one is left out
    view = dataclasses.replace(
        snapshot([], rate_limits={scope: RateLimitView(scope, used_percent=95.0, resets_at=resets)}),
        name=name,
        intake=IntakeView(status=IntakeStatus.ERROR, error=error, next_poll_in=1.0),
        hosts=(HostView(host, 1, 2, healthy=False), HostView(host, 2, 2, healthy=True)),
        holds=(HoldView(HoldKind.RATE_LIMIT, scope, None, 3.0, why),),
        retries=(RetryView(where, where, 1, None, 5.0, why),),
    )
    header = Content.from_markup(render_status(view, UNICODE, rate=1.0, note=note))
    queue = Content.from_markup(queue_markup(view, 1.0))
    for content in (header, queue):
        assert not SHOWN_CONTROL.search(content.plain), repr(content.plain)
        assert all("@click" not in repr(s.style) and "link" not in repr(s.style) for s in content.spans), content
    shown = header.plain.replace(WORD_JOINER, "")
    for text, limit in ((name, 80), (note, 120), (error, 60), (host, 40), (scope, 40)):
        assert one_line(text, limit) in shown, (text, shown)
    listed = queue.plain.replace(WORD_JOINER, "")
    for text, limit in ((scope, 40), (f"resets {resets}", 60), (why, 80), (f"{where}/{where}", 22)):
        assert one_line(text, limit) in listed, (text, listed)
