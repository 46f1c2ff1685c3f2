"""A fake `codex exec --json` that replays a JSONL file at a realistic pace, one line at a time.

    python -I -S paced_agent.py FILE LINES_PER_SEC CPU_DIR

Each line is written on its own (one `write` per line, as a real CLI prints an event when it
happens) at start + i / rate, so the pace does not drift. Arguments after the two are ignored
(the supervisor passes `exec ... --json -m MODEL`); the prompt on stdin is not read. Standard
library only and started with `-I -S`: a hundred of these cost little next to the supervisor.
At the end it writes its own CPU seconds to CPU_DIR/<pid>, for the benchmark to leave out.
"""

from __future__ import annotations

import os
import sys
import time


def main(path: str, rate: float, cpu_dir: str) -> None:
    with open(path, "rb") as handle:
        lines = handle.readlines()
    start = time.monotonic()
    for i, line in enumerate(lines):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        os.write(1, line)
    times = os.times()
    with open(os.path.join(cpu_dir, str(os.getpid())), "w") as handle:
        handle.write(f"{times.user + times.system + times.children_user + times.children_system}\n")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
