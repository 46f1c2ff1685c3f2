"""Benchmark: microseconds per stdout line on the session's hot path, in one process, no pipes.

    python benchmarks/hot_path.py                       # Codex and Claude streams, 100k lines, best of 5
    python benchmarks/hot_path.py --lines 20000 --repeats 9
    git archive main vik_tui | tar -x -C /tmp/old && python benchmarks/hot_path.py --also /tmp/old

Each source tree is measured in its own subprocess (PYTHONPATH), so `--also DIR` gives a
before/after in one command. The stages, per line of the stream:

- floor: `orjson.loads` then `orjson.dumps` of the same value (what any reader must do);
- decode + map: `loads` and the runtime's mapper (`feed`), events dropped;
- reader: what a reader process does for a flood handed to it (`stages/reader_worker.py`): the
  same line work on the whole lines of each 64 KiB read, and the answer's frame (no socket);
- session: the real `StageSession._read_stdout` reading the stream from a real pipe (`cat`
  writes it; its CPU is not counted) through the session's own `PipeReader`: decode, map, fold into the
  session's facts, encode in vik's record form, append to a real session file, one `on_events`
  call per batch (listeners: the supervisor's budget count, as `run` has it with no client).

The Codex stream is benchmarks/codex_stream.py's (the versus_vik.py and engine_stream.py one);
the Claude stream repeats the shapes of the real 2.1.197 capture (assistant text, a Bash
tool_use, its tool_result, usage on every assistant line). Best of `--repeats` runs: the least
disturbed by the other sessions of a shared machine. Time is the process's CPU time (user + sys),
not wall time: on a shared machine wall time also counts the other sessions' turns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
from codex_stream import WORDS, codex_lines

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def claude_lines(count: int) -> list[bytes]:
    """`count` lines of one Claude Code stream-json session (each ends with a newline)."""
    session = "9f8a6854-5e09-4db9-aa8f-0be7600320cd"
    usage = {"input_tokens": 50, "output_tokens": 12, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 0}
    out = [
        orjson.dumps(
            {"type": "system", "subtype": "init", "cwd": "/work", "session_id": session, "model": "claude-sonnet-4-6"}
        )
    ]

    def assistant(step: int, block: dict[str, object]) -> bytes:
        message = {
            "id": f"msg_{step:08x}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [block],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return orjson.dumps(
            {"type": "assistant", "message": message, "parent_tool_use_id": None, "session_id": session}
        )

    step = 0
    while len(out) < count - 1:
        step += 1
        text = " ".join(WORDS[(step * 7 + i) % len(WORDS)] for i in range(5 + step % 25))
        out.append(assistant(step, {"type": "text", "text": text}))
        call = f"toolu_{step:012x}"
        tool_input = {"command": "ls -1", "description": "list files"}
        out.append(assistant(step, {"type": "tool_use", "id": call, "name": "Bash", "input": tool_input}))
        result = {"tool_use_id": call, "type": "tool_result", "content": "a.txt\nb.txt", "is_error": False}
        out.append(
            orjson.dumps(
                {
                    "type": "user",
                    "message": {"role": "user", "content": [result]},
                    "parent_tool_use_id": None,
                    "session_id": session,
                }
            )
        )
    del out[count - 1 :]
    final = {"type": "result", "subtype": "success", "is_error": False, "result": "done", "session_id": session}
    out.append(orjson.dumps(dict(final, usage={"input_tokens": 100, "output_tokens": 40})))
    return [line + b"\n" for line in out]


CHILD = r"""
import asyncio, gc, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import orjson
from vik_tui.agents.codex import CodexMapper
from vik_tui.agents.claude_code import ClaudeMapper
from vik_tui.engine.stages.facts import SessionFacts, SessionLimits
from vik_tui.engine.stages.session import StageSession
from vik_tui.engine.processes.pipes import PipeReader, pipe

stream, runtime, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = Path(stream).read_bytes()
lines = data.splitlines()
new_mapper = CodexMapper if runtime == "codex" else ClaudeMapper

def best(fn):
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) / len(lines) * 1e6

def floor():
    loads, dumps = orjson.loads, orjson.dumps
    for line in lines:
        dumps(loads(line))

def mapped():
    loads, feed = orjson.loads, new_mapper().feed
    for line in lines:
        feed(loads(line))

def session():
    work = tempfile.mkdtemp()
    path = os.path.join(work, "session.jsonl")
    facts = SessionFacts(issue_id="I-1", stage="work", attempt=1, session_uuid="u", session_file=path)
    tokens = {}
    def on_events(session, events, lines):  # what the supervisor's budget count does per batch
        for event in events:
            if event.kind == "token_usage":
                for key, value in event.counts().items():
                    tokens[key] = tokens.get(key, 0) + value
    s = StageSession(facts, ["agent"], Path(work), "", new_mapper(), SessionLimits(), on_events=on_events)
    async def go():
        # a real pipe, fed by `cat` (its CPU is not this process's), read as a session reads it
        read_end, write_end = pipe()
        feeder = subprocess.Popen(["cat", stream], stdout=write_end)
        os.close(write_end)
        s._stdout = PipeReader(read_end)
        s._stdout.direct = s._take_whole_lines
        s._clock = asyncio.get_running_loop().time
        await s._read_stdout()
        s._stdout.close()
        feeder.wait()
    from vik_tui.engine.service.journal import Journal
    s._file = Journal(path, 128 * 1024)
    asyncio.run(go())
    s._file.close()
    written = Path(path).read_bytes().count(b"\n")
    os.unlink(path)
    os.rmdir(work)
    assert facts.events == written, (facts.events, written)

def reader():
    # what a reader process does per batch of a handed-over flood: whole lines of one pipe read
    from vik_tui.engine.stages.lines import FoldedFacts, LineWork, ProviderSignals
    from vik_tui.engine.stages.frames import frame
    from vik_tui.engine.stages.reader_worker import handle_batch
    work = LineWork(new_mapper(), FoldedFacts(), ProviderSignals())
    pos = 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + 64 * 1024) + 1 or len(data)
        head, records = handle_batch(work, "2026-12-07T00:00:00.000Z", data[pos:end])
        frame((head[0], 1, *head[1:]), records)
        pos = end

try:
    import vik_tui.engine.stages.reader_worker
    has_reader = True
except ImportError:  # a tree from before the reader processes
    has_reader = False
print(json.dumps({"floor": best(floor), "map": best(mapped), "session": best(session),
                  "reader": best(reader) if has_reader else None}))
"""


def measure(src: Path, stream: Path, runtime: str, repeats: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(stream), runtime, str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"hot_path: the run of {src} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="stdout lines per stream (default 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell; the best is shown (default 5)")
    parser.add_argument("--runtime", nargs="*", default=["codex", "claude_code"], choices=["codex", "claude_code"])
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="other source trees measured beside this one")
    args = parser.parse_args()
    trees = [("this tree", ROOT), *((f"^{i} {src}", src) for i, src in enumerate(args.also, 1))]
    with tempfile.TemporaryDirectory() as work:
        print(
            f"{'stream':<12} | {'tree':<30} | {'floor us/line':>13} | {'decode+map':>10} | {'session':>8} | {'reader':>6}"
        )
        print("-" * 95)
        for runtime in args.runtime:
            stream = Path(work) / f"{runtime}.jsonl"
            lines = codex_lines(args.lines) if runtime == "codex" else claude_lines(args.lines)
            stream.write_bytes(b"".join(lines))
            for name, src in trees:
                cell = measure(src, stream, runtime, args.repeats)
                reader = "-" if cell["reader"] is None else f"{cell['reader']:.2f}"
                print(
                    f"{runtime:<12} | {name[:30]:<30} | {cell['floor']:>13.2f} | {cell['map']:>10.2f} | "
                    f"{cell['session']:>8.2f} | {reader:>6}"
                )


if __name__ == "__main__":
    main()
