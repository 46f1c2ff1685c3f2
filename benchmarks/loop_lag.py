"""How long the engine's event loop is held while agents stream: a 10 ms probe timer's overshoot.

    python benchmarks/loop_lag.py WORKFLOW      # prints {"p50": ms, "p95": ms, "max": ms, "samples": n}

Runs the real Supervisor in-process (as the UI does) with a probe task that sleeps 10 ms and
records how late it wakes; only samples taken while a stage runs count. This is what the
session reader's fairness yield is for: a UI on the same loop is late by as much.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from pathlib import Path

from vik_tui.config.loader import load_workflow
from vik_tui.engine.engine_events import EngineEvent, StageFinished, StageStarted
from vik_tui.engine.supervisor import Supervisor

PROBE_SEC = 0.010


async def measure(path: Path) -> dict[str, float]:
    result = load_workflow(path)
    assert result.ok and result.workflow is not None, result.diagnostics
    supervisor = Supervisor(result.workflow, result.path, watch=False)
    running = 0
    lags: list[float] = []

    def on_event(event: EngineEvent) -> None:
        nonlocal running
        if isinstance(event, StageStarted):
            running += 1
        elif isinstance(event, StageFinished):
            running -= 1

    supervisor.subscribe(on_event)

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(PROBE_SEC)
            if running:
                lags.append(loop.time() - start - PROBE_SEC)

    task = asyncio.ensure_future(probe())
    await supervisor.run()
    task.cancel()
    lags.sort()
    if not lags:
        raise SystemExit("loop_lag: no sample was taken while a stage ran")
    ms = [lag * 1000 for lag in lags]
    return {
        "p50": statistics.median(ms),
        "p95": ms[int(len(ms) * 0.95)],
        "max": ms[-1],
        "samples": len(lags),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(Path(sys.argv[1])))))
