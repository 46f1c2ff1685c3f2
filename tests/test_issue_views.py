"""`views.IssueViews`: a snapshot builds only the live issues again; the rest of a big list is the
same view objects until a pull, a first run, a host pin or a wait changes the list."""

from __future__ import annotations

from vik_tui.config.schema import StageConfig, WhenConfig
from vik_tui.engine.intake import Issue
from vik_tui.engine.stages.runs import StageRun
from vik_tui.engine.view import RunStatus
from vik_tui.engine.views import IssueViews

STAGE = StageConfig(when=WhenConfig(state="todo"), agent="codex", prompt="go")


def tracker(n: int, **retitled: str) -> dict[str, Issue]:
    return {
        f"I-{i}": Issue(f"I-{i}", retitled.get(f"I-{i}", f"issue {i}"), "todo" if i < 3 else "backlog")
        for i in range(n)
    }


def test_only_live_issues_are_built_again_between_pulls() -> None:
    views = IssueViews()
    issues = tracker(1000)
    listed = list(issues)
    first = views.build(listed, issues, {}, {}, 0.0)
    assert [v.id for v in first] == listed
    again = views.build(listed, issues, {}, {}, 1.0)
    assert all(a is b for a, b in zip(first, again, strict=True))  # nothing ran: every view kept

    run = StageRun("I-1", "work", STAGE, status=RunStatus.RUNNING)
    running = views.build(listed, issues, {"I-1": [run]}, {}, 2.0)
    assert running[1].runs[0].status == RunStatus.RUNNING
    assert [v.id for v in running] == listed
    assert all(a is b for i, (a, b) in enumerate(zip(first, running, strict=True)) if i != 1)

    run.status = RunStatus.FAILED  # the live issue's view follows its run at every snapshot
    failed = views.build(listed, issues, {"I-1": [run]}, {}, 3.0)
    assert failed[1].runs[0].status == RunStatus.FAILED and failed[1].needs_attention
    assert failed[2] is first[2]


def test_a_pull_a_pin_and_a_wait_show_at_once() -> None:
    views = IssueViews()
    issues = tracker(50)
    first = views.build(list(issues), issues, {}, {}, 0.0)

    pulled = tracker(50, **{"I-7": "a new title"})
    issues.update(pulled)
    listed = [i for i in pulled if i != "I-9"]  # a new pull: I-9 is gone, I-7 retitled
    after = views.build(listed, issues, {}, {}, 1.0)
    assert [v.id for v in after] == listed
    assert after[7].title == "a new title" and first[7].title == "issue 7"
    assert after[3] is first[3]  # the same issue again: the same view

    pinned = views.build(listed, issues, {}, {"I-4": "box"}, 2.0)
    assert pinned[4].host == "box" and pinned[5] is after[5]

    waiting = views.build(listed, issues, {}, {"I-4": "box"}, 3.0, {"I-5": "waiting for plan to finish"})
    assert waiting[5].waiting == "waiting for plan to finish"
    done = views.build(listed, issues, {}, {"I-4": "box"}, 4.0, {})
    assert done[5].waiting is None


def test_an_unlisted_issue_with_runs_stays_at_the_end() -> None:
    views = IssueViews()
    issues = tracker(5)
    run = StageRun("I-0", "work", STAGE, status=RunStatus.RUNNING)
    listed = ["I-1", "I-2", "I-3", "I-4"]  # I-0 left the tracker while its stage runs
    built = views.build(listed, issues, {"I-0": [run]}, {}, 0.0)
    assert [v.id for v in built] == [*listed, "I-0"]
    assert not built[-1].listed and built[-1].runs
    assert [v.id for v in views.build(listed, issues, {}, {}, 1.0)] == listed  # its run forgotten
