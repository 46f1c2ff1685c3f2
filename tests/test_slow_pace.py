"""What the supervisor leaves out at a slow pace (issue #20): a batch nothing counts is not
counted, the bus calls its listeners without copying them per event, and `run` as the program
keeps its collector off the start-up heap. Each keeps what it replaced: the same budgets, the
same listeners called, the same collector for a caller that runs `run` in-process."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import Project, base_workflow

from vik_tui.agents import events as ev
from vik_tui.cli import lean
from vik_tui.config.loader import load_workflow
from vik_tui.config.schema import Workflow
from vik_tui.engine import engine_events as ee
from vik_tui.engine.bus import EventBus
from vik_tui.engine.holds import Holds
from vik_tui.engine.service.logs import DailyLog

ROOT = Path(__file__).resolve().parents[1]


def _workflow(project: Project, **budget: int) -> Workflow:
    wf = base_workflow(project)
    if budget:
        wf["loop"]["budget"] = budget
    loaded = load_workflow(project.write(wf))
    assert loaded.workflow is not None, loaded.errors
    return loaded.workflow


def _holds(workflow: Workflow) -> Holds:
    return Holds(lambda: workflow, lambda _event: None, lambda _level, _text: None, lambda: None)


def test_a_batch_is_skipped_only_when_nothing_in_it_counts_and_no_budget_is_set(project: Project) -> None:
    talk: list[ev.AgentEvent] = [ev.Message(text="hi"), ev.ToolCall(name="shell", status="started")]
    tokens: list[ev.AgentEvent] = [ev.Message(text="hi"), ev.TokenUsage(input=5)]
    limits = ev.RateLimit(scope="five_hour")
    free = _holds(_workflow(project))
    assert free.idle_for(talk)
    assert not free.idle_for(tokens) and not free.idle_for([limits])
    # with a budget, every batch is looked at (a reload may have lowered it below what was spent)
    assert not _holds(_workflow(project, session_tokens=100)).idle_for(talk)
    assert not _holds(_workflow(project, daily_tokens=100)).idle_for(talk)


def test_the_bus_calls_the_listeners_subscribed_when_an_event_was_emitted(tmp_path: Path) -> None:
    """As with the copy per event it replaced: a listener dropped during an emit still gets that
    event, one added during an emit gets the next one, and a listener that raises is detached
    and said to the others."""
    bus = EventBus(DailyLog(tmp_path / "logs"))
    got: dict[str, list[str]] = {"a": [], "b": [], "c": []}

    def listener(name: str) -> Callable[[ee.EngineEvent], None]:
        return lambda event: got[name].append(event.describe())

    unsubscribe_b: list[Callable[[], None]] = []

    def first(event: ee.EngineEvent) -> None:
        got["a"].append(event.describe())
        if unsubscribe_b:
            unsubscribe_b.pop()()  # b goes, during this emit
            bus.subscribe(listener("c"))  # c comes, during this emit

    bus.subscribe(first)
    unsubscribe_b.append(bus.subscribe(listener("b")))
    bus.emit(ee.Log(level="info", message="one"))
    bus.emit(ee.Log(level="info", message="two"))
    assert got == {"a": ["one", "two"], "b": ["one"], "c": ["two"]}

    def broken(_event: ee.EngineEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.emit(ee.Log(level="info", message="three"))
    bus.emit(ee.Log(level="info", message="four"))
    assert got["c"][-3:] == ["three", "an engine subscriber failed and was detached: RuntimeError: boom", "four"]
    bus.close()


def test_the_collector_is_quieted_only_when_run_is_the_program() -> None:
    """In a caller's process (`run` called in-process, as tests and embedders do) the collector
    is left as it was; as the program, the start-up heap is frozen and the young generation is
    collected less often."""
    frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
    lean.quiet_collector()
    assert (gc.get_freeze_count(), gc.get_threshold()) == (frozen, threshold)
    code = (
        "import gc\n"
        "from vik_tui.cli import lean\n"
        "lean.as_program()\n"
        "lean.quiet_collector()\n"
        "print(gc.get_freeze_count() > 1000, gc.get_threshold()[:2])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == f"True ({lean.YOUNG_THRESHOLD}, {lean.MIDDLE_THRESHOLD})"
