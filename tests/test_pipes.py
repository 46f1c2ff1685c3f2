"""PipeReader (engine/processes/pipes.py) on real pipes: every byte in order, end of file,
reading paused while its buffer is full and resumed once it is read, the direct path taken only
while a task waits with nothing buffered, and a closed reader handing out nothing more."""

from __future__ import annotations

import asyncio
import os

from vik_tui.engine.processes.pipes import PipeReader, pipe


async def _read_to_end(reader: PipeReader, n: int = 65536) -> bytes:
    got = bytearray()
    while chunk := await reader.read(n):
        got += chunk
    return bytes(got)


async def test_every_byte_in_order_then_end_of_file() -> None:
    read_end, write_end = pipe()
    reader = PipeReader(read_end)
    payload = b"".join(b"line %05d\n" % i for i in range(20_000))  # 220 KB: more than a pipe holds

    async def write() -> None:
        view = memoryview(payload)
        os.set_blocking(write_end, False)
        while view:
            try:
                view = view[os.write(write_end, view[:5000]) :]
            except BlockingIOError:
                await asyncio.sleep(0.001)
        os.close(write_end)

    writer = asyncio.ensure_future(write())
    got = await _read_to_end(reader, 7000)  # smaller reads than the chunks: the rest is kept
    await writer
    reader.close()
    assert got == payload


async def test_reading_pauses_while_the_buffer_is_full_and_resumes() -> None:
    read_end, write_end = pipe()
    reader = PipeReader(read_end, limit=1000)
    os.write(write_end, b"x" * 3000)
    for _ in range(20):  # let the selector call it a few times: it stops once 1000 bytes are in
        await asyncio.sleep(0)
    assert 1000 <= reader._size <= 3000
    assert not reader._reading  # paused: the rest waits in the pipe, as for a slow reader
    first = await reader.read(65536)
    os.close(write_end)
    rest = await _read_to_end(reader)
    reader.close()
    assert first + rest == b"x" * 3000


async def test_the_direct_path_takes_data_only_while_a_reader_waits() -> None:
    read_end, write_end = pipe()
    reader = PipeReader(read_end)
    taken: list[bytes] = []

    def direct(data: bytes) -> bool:
        if data.startswith(b"take"):
            taken.append(data)
            return True
        return False

    reader.direct = direct
    os.write(write_end, b"take 1\n")  # nobody waits yet: buffered for read()
    for _ in range(5):
        await asyncio.sleep(0)
    assert taken == [] and await reader.read() == b"take 1\n"

    waiting = asyncio.ensure_future(reader.read())
    await asyncio.sleep(0)
    os.write(write_end, b"take 2\n")  # a reader waits, nothing buffered: taken directly
    for _ in range(50):
        if taken:
            break
        await asyncio.sleep(0.01)
    assert taken == [b"take 2\n"] and not waiting.done()
    os.write(write_end, b"leave 3\n")  # refused by `direct`: the waiting reader gets it
    assert await asyncio.wait_for(waiting, 5) == b"leave 3\n"
    os.close(write_end)
    assert await reader.read() == b""
    reader.close()
    assert taken == [b"take 2\n"]


async def test_a_closed_reader_hands_out_nothing_more() -> None:
    read_end, write_end = pipe()
    reader = PipeReader(read_end)
    os.write(write_end, b"dropped\n")
    for _ in range(5):
        await asyncio.sleep(0)
    assert reader._size == len(b"dropped\n")
    reader.close()  # the session is over: what was not read yet is dropped
    assert await reader.read() == b""
    reader.close()  # twice is harmless
    os.close(write_end)


async def test_a_closed_reader_wakes_a_waiting_task() -> None:
    read_end, write_end = pipe()
    reader = PipeReader(read_end)
    waiting = asyncio.ensure_future(reader.read())
    await asyncio.sleep(0)
    reader.close()
    assert await asyncio.wait_for(waiting, 5) == b""
    os.close(write_end)
