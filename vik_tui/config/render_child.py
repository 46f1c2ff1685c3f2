"""A template render in a forked child under an address-space limit, its output capped.

Fuel bounds a template's steps, not its memory: one step such as `"x" * 100000` makes 100 kB,
so a loop of a few hundred steps rendered 300 MB and took the supervisor to 610 MiB RSS (a
thousand times that was OOM-killed). So the render runs in a child forked for it (a fork of the
supervisor costs about a millisecond and shares its pages; the template and its context are
already there), limited to the address space it had plus RENDER_ROOM, and a result over
RENDER_MAX_BYTES is refused. The supervisor's own memory never holds more than the capped text.

Where fork is missing (not POSIX), the render runs in the process as before.
It lives in `config` beside the engine's set-up (`jinja`) because doctor renders too (its
`after_create` check), and doctor may not import the engine.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import threading
import time
import warnings
from collections.abc import Callable

RENDER_MAX_BYTES = 16 * 1024 * 1024  # a prompt or hook longer than this is refused
RENDER_ROOM = 256 * 1024 * 1024  # address space the child may add to what it was forked with
RENDER_TIMEOUT_SEC = 30.0  # fuel ends a runaway loop long before; this bounds anything else

# Renders run in threads (off the event loop). A fork copies only the forking thread, so a lock
# another thread held at that moment (the template engine's own) would stay locked in the child
# for good: in-process renders hold RENDER_LOCK, and a fork takes it for the fork itself.
RENDER_LOCK = threading.Lock()
_CHILDREN: set[int] = set()  # render children alive now (`kill_renders`)


class RenderRefused(Exception):
    """The render went over a limit (its size, its memory, its time) or its child died."""


def render_bounded(render: Callable[[], str], errors: tuple[type[Exception], ...]) -> str:
    """`render()` in a forked child: its text, or the same exception (one of `errors`, re-raised
    with its message), or RenderRefused naming the limit it passed."""
    if not hasattr(os, "fork"):
        return render()
    import pickle  # here: a supervisor whose templates are plain text renders nothing in a child

    read_end, write_end = os.pipe()
    with RENDER_LOCK, warnings.catch_warnings():  # 3.12+: fork of a threaded process; the child only renders
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: render, report, exit without running anything of the parent's
        os.close(read_end)
        _child(render, errors, write_end)
    os.close(write_end)
    _CHILDREN.add(pid)
    try:
        data = _read_all(read_end, time.monotonic() + RENDER_TIMEOUT_SEC)
    except TimeoutError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        raise RenderRefused(f"took longer than {RENDER_TIMEOUT_SEC:g}s") from None
    finally:
        os.close(read_end)
        _CHILDREN.discard(pid)  # before the wait: until then its pid cannot name another process
        status = _wait(pid)
    if not data:
        raise RenderRefused(_death(status))
    kind, index, text = pickle.loads(data)
    if kind == "ok":
        return str(text)
    if kind == "error":
        raise errors[index](text)
    raise RenderRefused(text)


def kill_renders() -> None:
    """End every render in progress (a stop must not wait for a heavy template): each one's
    caller gets RenderRefused at once, and the thread it ran in ends with it."""
    for pid in list(_CHILDREN):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _child(render: Callable[[], str], errors: tuple[type[Exception], ...], fd: int) -> None:
    import pickle  # imported by `render_bounded` before the fork: already there

    code = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):  # not the parent's handlers (its loop's wakeup fd)
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        null = os.open(os.devnull, os.O_WRONLY)  # the engine's own words on a failed allocation
        os.dup2(null, 2)
        room = _address_space()
        if room:
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            limit = room + RENDER_ROOM if hard == resource.RLIM_INFINITY else min(room + RENDER_ROOM, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            text = render()
            if len(text) > RENDER_MAX_BYTES:  # characters; checked again in bytes by the caller's use
                result: tuple[str, int, str] = ("refused", 0, too_long(len(text)))
            else:
                result = ("ok", 0, text)
        except errors as exc:
            result = ("error", next(i for i, kind in enumerate(errors) if isinstance(exc, kind)), str(exc))
        except MemoryError:
            result = ("refused", 0, f"ran out of memory (over {RENDER_ROOM // 2**20} MiB)")
        data = pickle.dumps(result)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def too_long(size: int) -> str:
    return f"rendered {size / 2**20:.1f} MiB, over the {RENDER_MAX_BYTES // 2**20} MiB limit"


def _address_space() -> int:
    """The child's address space as forked (VmSize); 0 where /proc cannot say (no limit then)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _read_all(fd: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _wait(pid: int) -> int | None:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # collected already (the subreaper's reaper)
        return None


def _death(status: int | None) -> str:
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGABRT:  # the Rust engine's answer to a failed allocation
            return f"ran out of memory (over {RENDER_ROOM // 2**20} MiB)"
        return f"its process died by signal {signal.Signals(sig).name}"
    return "its process ended without a result"
