#!/usr/bin/env python3
"""A Codex-shaped agent for latency benchmarks: every line written to the FIFO named by
`--fifo` becomes one agent message, printed the moment it is read; `END` ends the turn.

    echo_agent.py exec --fifo PATH --json -m MODEL   (prompt on stdin, ignored)
"""

import argparse
import json
import sys
import uuid


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("sub", nargs="?")
    parser.add_argument("--fifo", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-m", dest="model")
    args, _unknown = parser.parse_known_args()
    sys.stdin.read()
    emit({"type": "thread.started", "thread_id": str(uuid.uuid4())})
    emit({"type": "turn.started"})
    done = False
    while not done:
        with open(args.fifo) as fifo:  # reopened after each writer closes it
            for line in fifo:
                text = line.strip()
                if text == "END":
                    done = True
                    break
                if text:
                    emit({"type": "item.completed", "item": {"id": text, "type": "agent_message", "text": text}})
    emit({"type": "turn.completed", "usage": {"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 1}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
