"""Issue #18, item 3: every text the UI shows from outside (ids, titles, failure reasons, agent
text) is shown as text, never parsed as markup: a property test through the screens and toasts."""

from __future__ import annotations

import asyncio

from conftest import wait_on_screen
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted_engine import ScriptedEngine, issue, run, session, snapshot

from vik_tui.agents import events as ev
from vik_tui.engine import engine_events as ee
from vik_tui.engine.view import RetryView, RunStatus, SessionState
from vik_tui.ui.app import VikApp

MARKUP = st.sampled_from(["[/]", "[a=1=2]", "[bold red]", "[/bold]", "[$error]", "[@click=app.quit]", "\\[", "]"])
HOSTILE = st.lists(
    st.one_of(MARKUP, st.sampled_from(["\ud800", "\u202e", "\x00", "\x1b[2J", "\x1b]2;t\x07", "\r", "\n"]), st.text()),
    min_size=1,
    max_size=6,
).map("".join)
SAFE_ID = st.lists(st.one_of(MARKUP, st.sampled_from(["x", "1", "-", "="])), min_size=1, max_size=5).map(
    lambda parts: "".join(parts).replace("/", "")
)


async def _drive(issue_id: str, title: str, reason: str, text: str) -> None:
    failed = session(issue_id, "plan", 1, 1, SessionState.FAILED, "11:59:03", "11:59:31", reason=reason)
    view = snapshot(
        [issue(issue_id, title, "todo", [run("plan", RunStatus.RETRY_WAIT, [failed], retry_in=9.0, reason=reason)])],
        retries=[RetryView(issue_id, "plan", 1, "2026-01-15T12:00:09Z", 9.0, reason)],
    )
    message = ev.Message(role="assistant", text=text, ts="2026-01-15T11:59:10Z")
    engine = ScriptedEngine(view, records={failed.session_file: [message, ev.Error(detail=reason, fatal=True)]})
    app = VikApp(engine, bell=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_on_screen(pilot, lambda: app.main.is_attached, "the main screen")
        engine.emit(
            ee.StageFinished(
                level="error",
                issue=issue_id,
                stage="plan",
                attempt=1,
                state=RunStatus.FAILED,
                reason=reason,
                exit_code=1,
                signal=None,
                tokens={},
                session_file=failed.session_file,
            )
        )
        engine.emit(ee.Log(level="error", message=text))
        await pilot.pause(0.1)
        for key in ("e", "escape", "question_mark", "escape", "t", "escape", "exclamation_mark", "escape"):
            await pilot.press(key)
            await pilot.pause(0.05)
        assert app._exception is None
        assert app.return_code in (None, 0)


@settings(max_examples=8)
@given(issue_id=SAFE_ID, title=HOSTILE, reason=HOSTILE, text=HOSTILE)
def test_outside_text_is_shown_as_text_on_every_screen_and_toast(
    issue_id: str, title: str, reason: str, text: str
) -> None:
    asyncio.run(_drive(issue_id, title, reason, text))
