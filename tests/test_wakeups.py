"""Batched wake-ups (engine/wakeups.py) on real pipes: what is readable goes at once, a wait for
input is rounded up to the tick and then takes everything that became readable, a timer is
never passed, and a loop using it loses no byte.

The tick is long here (seconds), so what each test checks does not hang on the machine's speed.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vik_tui.engine.processes.pipes import PipeReader
from vik_tui.engine.wakeups import PATIENT, TICK_SEC, BatchedSelect, batch_wakeups


@pytest.fixture
def pipes() -> Iterator[tuple[selectors.DefaultSelector, list[tuple[int, int]]]]:
    """Three pipes standing for agents' output (in `PATIENT`, as `PipeReader` puts them)."""
    selector = selectors.DefaultSelector()
    made = [os.pipe() for _ in range(3)]
    for read_end, _ in made:
        selector.register(read_end, selectors.EVENT_READ)
        PATIENT.add(read_end)
    yield selector, made
    selector.close()
    for read_end, write_end in made:
        PATIENT.discard(read_end)
        os.close(read_end)
        os.close(write_end)


def _later(delay: float, fd: int) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), os.write(fd, b"line\n")))
    thread.start()
    return thread


def _taken_at_once(selector: selectors.BaseSelector, fd: int, trigger: Callable[[], object] | None) -> BatchedSelect:
    """Select with a minute-long tick right after a wake-up (an agent's line would sleep the
    whole tick), `trigger` run 50 ms later in a thread: `fd` must come back at once."""
    batched = BatchedSelect(selector.select, tick_sec=60.0)
    batched.woken = time.monotonic()
    thread = threading.Thread(target=lambda: (time.sleep(0.05), trigger())) if trigger else None
    if thread is not None:
        thread.start()
    start = time.monotonic()
    ready = batched(None)
    if thread is not None:
        thread.join()
    assert [key.fd for key, _ in ready] == [fd]
    assert time.monotonic() - start < 30
    return batched


def test_the_tick_keeps_an_attached_screen_within_its_budget() -> None:
    """A line waits at most one tick in the supervisor: what an attached screen shows may be at
    most ~50 ms behind the agent (issue #20), and a longer tick saves little more (the wake-ups
    are two per tick already)."""
    assert 0.02 <= TICK_SEC <= 0.05


def test_what_is_readable_is_taken_at_once(pipes: tuple[selectors.DefaultSelector, list[tuple[int, int]]]) -> None:
    selector, made = pipes
    batched = BatchedSelect(selector.select, tick_sec=30.0)
    batched.woken = time.monotonic()  # a wake-up just now: a wait would sleep the whole tick
    os.write(made[0][1], b"line\n")
    ready = batched(None)  # would hang for 30 s if it waited
    assert [key.fd for key, _ in ready] == [made[0][0]]
    assert batched.wakeups == 0  # not a wake-up after a wait


def test_a_wait_is_rounded_up_to_the_tick_and_takes_all_that_came(
    pipes: tuple[selectors.DefaultSelector, list[tuple[int, int]]],
) -> None:
    selector, made = pipes
    batched = BatchedSelect(selector.select, tick_sec=3.0)
    first = _later(0.05, made[0][1])
    assert [key.fd for key, _ in batched(10.0)] == [made[0][0]]  # the first wake-up: at once
    first.join()
    os.read(made[0][0], 100)
    writers = [_later(0.05, made[1][1]), _later(0.3, made[2][1])]
    ready = batched(10.0)  # woken by the first line, it sleeps out the tick: the second comes too
    for writer in writers:
        writer.join()
    assert sorted(key.fd for key, _ in ready) == sorted([made[1][0], made[2][0]])
    assert batched.wakeups == 2


def test_a_burst_is_taken_at_once(pipes: tuple[selectors.DefaultSelector, list[tuple[int, int]]]) -> None:
    """A wake-up that finds a pipe holding a burst (a flooding agent) does not wait out the tick:
    the pipe would fill and stall the agent meanwhile."""
    selector, made = pipes
    batched = _taken_at_once(selector, made[1][0], lambda: os.write(made[1][1], b"x" * 8192))
    assert batched.wakeups == 1


def test_an_end_is_taken_at_once() -> None:
    """A pipe at its EOF (an agent closed its output) does not wait out the tick: the next step
    (the stage's outcome) waits for it."""
    selector = selectors.DefaultSelector()
    read_end, write_end = os.pipe()
    selector.register(read_end, selectors.EVENT_READ)
    PATIENT.add(read_end)
    try:
        _taken_at_once(selector, read_end, lambda: os.close(write_end))
    finally:
        PATIENT.discard(read_end)
        selector.close()
        os.close(read_end)


def test_a_process_end_is_taken_at_once() -> None:
    """The pidfd of a child that exited (how the loop waits for agents, processes/watcher.py)
    is an end too."""
    selector = selectors.DefaultSelector()
    child = subprocess.Popen(["sleep", "0.05"])
    pidfd = os.pidfd_open(child.pid)
    selector.register(pidfd, selectors.EVENT_READ)
    PATIENT.add(pidfd)  # even where it is counted as patient, an end goes at once
    try:
        _taken_at_once(selector, pidfd, None)  # the child exits by itself
    finally:
        PATIENT.discard(pidfd)
        selector.close()
        os.close(pidfd)
        child.wait()


def test_the_wait_never_passes_the_loops_next_timer(
    pipes: tuple[selectors.DefaultSelector, list[tuple[int, int]]],
) -> None:
    selector, made = pipes
    batched = BatchedSelect(selector.select, tick_sec=60.0)
    batched.woken = time.monotonic()
    writer = _later(0.05, made[0][1])
    start = time.monotonic()
    ready = batched(0.5)  # a timer is due in 0.5 s: the line goes then, not after the 60 s tick
    writer.join()
    assert [key.fd for key, _ in ready] == [made[0][0]]
    assert time.monotonic() - start < 30


async def _read_all(readers: list[int], expected: int) -> dict[int, bytes]:
    """Read every pipe to its end on the running loop."""
    loop = asyncio.get_running_loop()
    got = {fd: b"" for fd in readers}
    done = asyncio.Event()

    def take(fd: int) -> None:
        data = os.read(fd, 65536)
        if not data:
            loop.remove_reader(fd)
        got[fd] += data
        if sum(len(v) for v in got.values()) == expected:
            done.set()

    for fd in readers:
        loop.add_reader(fd, take, fd)
    await done.wait()
    for fd in readers:
        loop.remove_reader(fd)
    return got


def test_a_batched_loop_gets_every_byte_with_fewer_wakeups() -> None:
    """Three writers at a slow pace (a line each every 10 ms): every byte arrives, in order, and
    the loop woke about once per tick, not once per line."""
    made = [os.pipe() for _ in range(3)]
    PATIENT.update(r for r, _ in made)
    lines = 30
    payload = [b"".join(b"%d:%03d\n" % (n, i) for i in range(lines)) for n in range(3)]

    def write(n: int, fd: int) -> None:
        for i in range(lines):
            os.write(fd, b"%d:%03d\n" % (n, i))
            time.sleep(0.01)

    async def main() -> tuple[dict[int, bytes], int]:
        loop = asyncio.get_running_loop()
        undo = batch_wakeups(loop, tick_sec=0.25)
        batched = loop._selector.select  # type: ignore[attr-defined]
        assert isinstance(batched, BatchedSelect)
        writers = [threading.Thread(target=write, args=(n, w)) for n, (_, w) in enumerate(made)]
        for writer in writers:
            writer.start()
        try:
            got = await _read_all([r for r, _ in made], sum(len(p) for p in payload))
        finally:
            for writer in writers:
                writer.join()
            undo()
        assert not isinstance(loop._selector.select, BatchedSelect)  # type: ignore[attr-defined]
        return got, batched.wakeups

    try:
        got, wakeups = asyncio.run(main())
    finally:
        for read_end, write_end in made:
            PATIENT.discard(read_end)
            os.close(read_end)
            os.close(write_end)
    assert [got[r] for r, _ in made] == payload
    # 90 lines over at least 0.3 s: one wake-up per 0.25 s tick (a slow machine only batches more)
    assert wakeups < lines * 3 / 4


def test_a_wake_up_that_is_not_an_agents_output_is_taken_at_once() -> None:
    """Only agents' output waits for the tick. A small write on any other descriptor (a pull's
    output, an API client's request) goes at once: it is what the next step waits for."""
    selector = selectors.DefaultSelector()
    read_end, write_end = os.pipe()
    selector.register(read_end, selectors.EVENT_READ)
    try:
        _taken_at_once(selector, read_end, lambda: os.write(write_end, b"line\n"))
    finally:
        selector.close()
        os.close(read_end)
        os.close(write_end)


def test_a_threads_result_is_not_held_for_the_tick() -> None:
    """`to_thread` results (the pull's parsed issues, a rendered prompt) wake the loop through
    its own socket: with a minute-long tick, steps that each wait for a thread still follow one
    another at once. Batched, a run's start-up waited out a tick at each of them."""

    tick = 20.0

    async def main() -> float:
        loop = asyncio.get_running_loop()
        undo = batch_wakeups(loop, tick_sec=tick)
        try:  # no timer on the loop: a batched wait would sleep the whole tick at each step
            start = time.monotonic()
            for step in range(3):
                assert await asyncio.to_thread(int, step) == step
            return time.monotonic() - start
        finally:
            undo()

    assert asyncio.run(main()) < tick / 2


def test_an_agents_pipe_is_patient_while_it_is_read() -> None:
    """`PipeReader` (agents' stdout and stderr) puts its descriptor in `PATIENT` and takes it
    out before closing it, so a number reused for a pull's pipe is not batched."""

    async def main() -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        reader = PipeReader(read_end)
        try:
            assert read_end in PATIENT
            os.write(write_end, b"line\n")
            assert await reader.read() == b"line\n"
        finally:
            reader.close()
            os.close(write_end)
        assert read_end not in PATIENT

    asyncio.run(main())
