"""Issue #17 item 8: `intake: N issues` heartbeats no longer fill the log file. An intake with
the same counts as the last one logged is not written again within the hour; a change is; the
subscribers still get every one."""

from __future__ import annotations

import json
from pathlib import Path

from vik_tui.engine import engine_events as ee
from vik_tui.engine.bus import EventBus
from vik_tui.engine.service.logs import DailyLog


def test_unchanged_intakes_are_logged_once(tmp_path: Path) -> None:
    bus = EventBus(DailyLog(tmp_path))
    seen: list[ee.EngineEvent] = []
    bus.subscribe(seen.append)
    for iteration, issues in enumerate([3, 3, 3, 3, 4, 4, 3], 1):
        bus.emit(ee.Intake(issues=issues, rejected=0, iteration=iteration))
    bus.close()
    lines = [json.loads(line) for path in sorted(tmp_path.iterdir()) for line in path.read_text().splitlines()]
    assert [(r["event"], r["issues"]) for r in lines if r.get("event") == "intake"] == [
        ("intake", 3),
        ("intake", 4),
        ("intake", 3),
    ]
    assert len(seen) == 7
