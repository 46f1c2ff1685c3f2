"""What a refresh must not do: re-arrange the screen for streamed text, or rebuild the footer
when moving between issues whose keys do the same. Both cost a full layout of the screen (the
footer is a widget per key); under 20 talking agents they were most of a key press."""

from __future__ import annotations

from typing import Any

import scripted_engine as scripted
from conftest import wait_on_screen

from vik_tui.ui.app import VikApp
from vik_tui.ui.clock import FrozenClock

SIZE = (120, 40)


def busy_app() -> VikApp:
    return VikApp(scripted.busy_engine(), clock=FrozenClock(scripted.NOW), bell=False)


async def test_session_log_writes_ask_for_no_layout() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        panes = app.main.panes
        await wait_on_screen(pilot, lambda: panes.settled() and panes.active_session_uuid(), "a session shown")
        log = panes.log_widget

        def scrollbar() -> bool:
            # more lines than the pane holds: a scrollbar (written again if the session's replay
            # refilled the pane with its own few lines meanwhile)
            if log.line_count < 200:
                log.write_lines([f"line {i}" for i in range(200)])
            return bool(log.show_vertical_scrollbar)

        await wait_on_screen(pilot, scrollbar, "the scrollbar (its own layout)")
        layouts: list[Any] = []
        writing = False
        refresh = log.refresh

        def spy(*regions: Any, **kwargs: Any) -> Any:
            if writing and kwargs.get("layout"):
                layouts.append(kwargs)
            return refresh(*regions, **kwargs)

        log.refresh = spy  # type: ignore[method-assign]
        checked = 0
        for batch in range(3):
            # only writes made while the scrollbar is shown count: the app may refill the pane
            # meanwhile (a re-wrap after the first layout), and a scrollbar appearing is a layout
            shown, writing = log.show_vertical_scrollbar, True
            log.write_lines([f"more {batch}.{i}" for i in range(5)])
            writing = False
            if shown:
                checked += 1
                assert layouts == [], f"write {batch} asked for a layout"
            layouts.clear()
            await pilot.pause()
        assert checked


async def test_moving_between_two_running_issues_keeps_the_footer() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_on_screen(pilot, lambda: main.selected == "ENG-12", "the first issue selected")

        def settled() -> bool:
            # the pane shows ENG-12's session and no footer refresh is still queued from getting
            # there: one that was (the pane's session arriving after the first frame) would land
            # after the key and be counted against it
            return bool(main.panes.settled() and main.panes.active_session_uuid()) and not main._footer_due

        await wait_on_screen(pilot, settled, "ENG-12's session shown and the footer up to date")
        calls: list[int] = []
        refresh_bindings = main.refresh_bindings

        def spy() -> None:
            calls.append(1)
            refresh_bindings()

        main.refresh_bindings = spy  # type: ignore[method-assign]
        await pilot.press("j")  # ENG-13: also a running stage with a running session
        await wait_on_screen(pilot, lambda: main.selected == "ENG-13", "the next issue selected")
        await wait_on_screen(pilot, settled, "ENG-13's session shown")
        await pilot.pause()
        assert calls == []


async def test_a_key_that_changes_the_footer_shows_the_pane_first() -> None:
    """The footer is recomposed after the screen refresh that shows the new pane, not inside
    the key (30-40 ms of CPU before the pane could be painted), and it still follows."""
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_on_screen(pilot, lambda: main.selected == "ENG-12", "the first issue selected")
        main.action_cursor_down()
        main.action_cursor_down()
        await wait_on_screen(pilot, lambda: main.selected == "ENG-14", "ENG-14 selected")
        await pilot.pause()
        calls: list[str | None] = []
        refresh_bindings = main.refresh_bindings

        def spy() -> None:
            calls.append(main.selected)
            refresh_bindings()

        main.refresh_bindings = spy  # type: ignore[method-assign]
        main.action_cursor_down()  # to the rejected record: no stage to cancel, no session to read
        assert main.selected.startswith("!rejected:") and calls == []  # the pane is synced, the footer waits
        await wait_on_screen(pilot, lambda: calls != [], "the footer refreshed")
        assert len(calls) == 1
        assert main.check_action("cancel", ()) is None  # what the footer now shows greyed out
