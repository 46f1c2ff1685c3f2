"""The floor: the engine's necessary work done as cheaply as Python can, for comparison.

    python benchmarks/floor.py OUT_DIR AGENT_COMMAND [N]

One asyncio loop spawns N agent processes (prompt on stdin, like the engine), reads each stdout
pipe in large chunks, splits lines, decodes every line with orjson, re-encodes it and appends it
to one file per agent with one write per chunk. No mapping, no snapshot, no events: whatever the
engine spends above this is its own overhead. Imports only asyncio and orjson, so its start-up
is as cheap as it can be.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

CHUNK = 1024 * 1024


async def agent(command: str, out: Path) -> int:
    proc = await asyncio.create_subprocess_exec(
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=CHUNK,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"go")
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass
    loads, dumps, newline = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE
    lines = 0
    parts: list[bytes] = []
    with open(out, "ab") as handle:
        while chunk := await proc.stdout.read(CHUNK):
            cut = chunk.rfind(b"\n")
            if cut < 0:
                parts.append(chunk)
                continue
            parts.append(chunk[: cut + 1])
            data = b"".join(parts)
            parts = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
            split = data.split(b"\n")
            split.pop()
            handle.write(b"".join([dumps(loads(line), option=newline) for line in split if line]))
            lines += len(split)
        if parts:
            handle.write(dumps(loads(b"".join(parts)), option=newline))
            lines += 1
    await proc.wait()
    return lines


async def main(out_dir: Path, command: str, n: int) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = await asyncio.gather(*(agent(command, out_dir / f"{i}.jsonl") for i in range(n)))
    return sum(counts)


if __name__ == "__main__":
    total = asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1))
    print(total)
