"""Codex-shaped JSONL for the engine benchmark, generated once, and the "agent" that replays it.

The agent must cost almost nothing, or the benchmark measures the fake agent instead of the
reader: so the stream is written to a file up front and each agent is a two-line shell script
that `exec`s `cat` on it (cat copies in large blocks). Floor and engine spawn the same script.

The lines follow the real 0.169.0 capture (tests/data/reference/codex-0.169.0-command-success.jsonl)
and the shapes of tests/fakes/fake_codex: reasoning, command_execution started/completed with
output, agent messages, a `token_count` with rate limits now and then, and a final
`turn.completed` with token usage. Sizes vary with a fixed seed, so every run reads the same bytes.
"""

from __future__ import annotations

import random
import stat
from pathlib import Path

import orjson

_PROSE = (
    "the change compiles tests pass refactor module function parser engine session file output "
    "error retry config workflow stage issue agent token stream record buffer line chunk fix"
)
WORDS = _PROSE.split()


def _text(rng: random.Random, low: int, high: int) -> str:
    """Prose of `low`..`high` words, so lines have realistic, varying lengths."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _output(rng: random.Random) -> str:
    """A command's aggregated output: mostly short, sometimes a few dozen lines."""
    lines = rng.choice((0, 1, 1, 2, 3, 5, 8, 20))
    return "".join(f"{_text(rng, 2, 10)}\n" for _ in range(lines))


def codex_lines(count: int, seed: int = 169) -> list[bytes]:
    """`count` lines of one Codex `exec --json` session (each ends with a newline)."""
    rng = random.Random(seed)
    out: list[bytes] = []

    def put(obj: dict[str, object]) -> None:
        out.append(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))

    put({"type": "thread.started", "thread_id": "01a2067a-c705-7fc0-a0df-44e645624731"})
    put({"type": "turn.started"})
    step = 0
    while len(out) < count - 1:
        step += 1
        put({"type": "item.completed", "item": {"id": f"item_{step}r", "type": "reasoning", "text": _text(rng, 8, 40)}})
        command = f"/bin/bash -lc '{rng.choice(('ls -1', 'make test', 'git status', 'rg -n TODO', 'pytest -q'))}'"
        item = {
            "id": f"item_{step}c",
            "type": "command_execution",
            "command": command,
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        }
        put({"type": "item.started", "item": item})
        code = 0 if rng.random() < 0.9 else 1
        done = dict(item, aggregated_output=_output(rng), exit_code=code, status="completed" if code == 0 else "failed")
        put({"type": "item.completed", "item": done})
        put(
            {
                "type": "item.completed",
                "item": {"id": f"item_{step}m", "type": "agent_message", "text": _text(rng, 5, 30)},
            }
        )
        if step % 50 == 0:
            put(
                {
                    "type": "token_count",
                    "info": {"total_token_usage": {"input_tokens": step * 240, "output_tokens": step * 90}},
                    "rate_limits": {
                        "primary": {"used_percent": step % 100, "window_minutes": 300, "resets_at": 1767225600},
                        "secondary": {"used_percent": 3.0, "window_minutes": 10080, "resets_at": 1767830400},
                    },
                }
            )
    del out[count - 1 :]
    usage = {
        "input_tokens": 240 * step,
        "cached_input_tokens": 24 * step,
        "cache_write_input_tokens": 0,
        "output_tokens": 90 * step,
        "reasoning_output_tokens": 16 * step,
    }
    put({"type": "turn.completed", "usage": usage})
    return out


def big_line(megabytes: int) -> list[bytes]:
    """A session whose one agent message is a single line of `megabytes` MiB."""
    head = [b'{"type":"thread.started","thread_id":"big"}\n', b'{"type":"turn.started"}\n']
    text = "y" * (megabytes * 1024 * 1024)
    message = {"type": "item.completed", "item": {"id": "big", "type": "agent_message", "text": text}}
    tail = b'{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}\n'
    return [*head, orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE), tail]


def write_agent(work: Path, name: str, lines: list[bytes]) -> Path:
    """Write the stream to `work/<name>.jsonl` and an executable agent script that replays it.

    The script ignores its arguments (the engine passes `exec ... --json -m model`) and stdin.
    """
    data = work / f"{name}.jsonl"
    with open(data, "wb") as handle:
        handle.writelines(lines)
    script = work / f"{name}-agent"
    script.write_text(f"#!/bin/sh\nexec cat '{data}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script
