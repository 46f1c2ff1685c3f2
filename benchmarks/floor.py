"""The floor: the engine's necessary work done as cheaply as Python can, for comparison.

    python benchmarks/floor.py OUT_DIR AGENT_COMMAND [N]

One asyncio loop spawns N agent processes (prompt on stdin, like the engine), reads each stdout
pipe in large chunks, splits lines, decodes every line with orjson, re-encodes it and appends it
to one file per agent. No mapping, no snapshot, no events: whatever the engine spends above this
is its own overhead. Imports only asyncio and orjson, so its start-up is as cheap as it can be.

Each encoded record goes straight into the file's buffer rather than into a list joined per
chunk: holding a chunk's records made glibc return the heap top to the OS and fault it back in
for every chunk (~0.5 page faults per line), which cost more than the JSON work itself.
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
    parts: list[bytes] = []  # a line that spans chunks, joined once it ends
    with open(out, "ab", buffering=CHUNK) as handle:
        write = handle.write  # each record straight into the buffer: see the module docstring
        while chunk := await proc.stdout.read(CHUNK):
            split = chunk.split(b"\n")
            tail = split.pop()
            if split:
                if parts:
                    parts.append(split[0])
                    split[0] = b"".join(parts)
                    parts = []
                for line in split:
                    if line:
                        write(dumps(loads(line), option=newline))
                lines += len(split)
            if tail:
                parts.append(tail)
        if parts:
            write(dumps(loads(b"".join(parts)), option=newline))
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
