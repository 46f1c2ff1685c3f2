"""What `vik-tui run` does to its own process, as the program (not when a caller runs it
in-process): it loads no TLS and no pydantic plugins, its collector leaves the start-up heap
alone, and it ends without the interpreter's teardown.

No TLS: nothing in a supervisor's process speaks TLS. The HTTP API is plain HTTP on a unix socket
and on a loopback (or token-guarded) TCP port, SSH workers use the `ssh` program, and trackers,
hooks and notify are commands. Yet asyncio imports `ssl`, and pydantic imports `hashlib` (through
`secrets` and `hmac`), and each maps OpenSSL's libraries: ~5 MiB resident and ~10 ms before the
first line. Both are optional in the standard library (CPython builds without OpenSSL): a None in
`sys.modules` makes their import raise ImportError (the import system's documented way to halt
one), which asyncio and hashlib catch; asyncio then has no TLS, and hashlib keeps its built-in
md5, sha1, sha2, sha3 and blake2. `tests/test_lean_run.py` holds a run to it, API and all.

No bzip2 and xz either: `shutil` imports both codecs (for `make_archive`), and nothing in a
supervisor compresses; they are optional the same way (`shutil` catches the ImportError).

No pydantic plugins: at its first model pydantic looks for plugins among the entry points of
every installed distribution (`pydantic.plugin._loader`), and importing that loader imports
`importlib.metadata` (with zipfile, email, csv, tempfile and importlib.resources): 2 MiB of a
supervisor's ~36 MiB, at every start. A plugin would watch pydantic validate vik-tui's own
schema, nothing a supervisor needs. pydantic's own switch (`PYDANTIC_DISABLE_PLUGINS`) skips the
lookup but not that import, and as an environment variable it would reach every agent. So a
stand-in for the loader goes into `sys.modules` first: its `get_plugins` finds none, and any
other name pydantic might ask of it (a later release) is the real loader's.

A quiet collector: what is alive once the workflow is loaded (modules, the schema's models: most
of the heap) lives as long as the process, so it is moved out of the cyclic collector's sight
(`gc.freeze`) and a full pass walks only what came later; and the young generations are
collected less often. At a slow pace the HTTP API's replay ring keeps each batch for thousands of
lines, so every line's objects were carried through all three generations: ~2.5 ms of CPU a
second at 100 agents x 5 lines/s, a full pass of the whole heap every ~20 s (17 ms). Reference
counting still frees what dies, and cycles made later are still collected. (The terminal UI
tunes its own: `ui/heap.py`.)

No teardown: once `run` is over, the interpreter would free every object and module one by one
before exiting (80-100 ms of CPU after the last line, at 45 MiB). Nothing needs it: the engine
writes its files with `os.write` on raw descriptors, so that a kill -9 loses nothing (the chaos
tests), and there is nothing in a Python buffer that a teardown would flush. The standard
streams and logging are flushed, then `os._exit` (as the daemon of `run -d` already ends).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import types
from typing import Any, NoReturn

# the standard library's two users of OpenSSL, and its bzip2 and xz codecs (which shutil imports
# for archives a supervisor never makes: each maps its library, 0.25 MiB in all)
WITHOUT = ("ssl", "_hashlib", "_bz2", "_lzma")
PYDANTIC_PLUGIN_LOADER = "pydantic.plugin._loader"
YOUNG_THRESHOLD = 20_000  # objects allocated (net) between passes over the youngest generation
MIDDLE_THRESHOLD = 2  # young passes between passes over the middle one (as `ui/heap.py`)
_program = False  # `run` is the program (`as_program`), not a caller's function


def as_program() -> None:
    """`run` is this process's program: what this module describes applies (call it first)."""
    global _program
    _program = True
    leave_out_tls()
    leave_out_pydantic_plugins()


def quiet_collector() -> None:
    """Once the workflow is loaded and the engine imported, as the program only: freeze what is
    alive and collect the young generations less often (the module's docstring)."""
    if not _program:
        return
    gc.freeze()
    _young, _middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, old)


def leave_out_tls() -> None:
    """Before asyncio is imported: `import ssl` and `import _hashlib` raise ImportError from now on
    (a module already loaded stays as it is)."""
    for name in WITHOUT:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: the import system's "halted"


def leave_out_pydantic_plugins() -> None:
    """Before pydantic builds its first model: it finds no plugins, without `importlib.metadata`
    (a loader already imported stays as it is)."""
    sys.modules.setdefault(PYDANTIC_PLUGIN_LOADER, _NoPlugins(PYDANTIC_PLUGIN_LOADER))


class _NoPlugins(types.ModuleType):
    """`pydantic.plugin._loader` without plugins: `get_plugins()` is empty, as pydantic's is
    with `PYDANTIC_DISABLE_PLUGINS=1`."""

    @staticmethod
    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(self, name: str) -> Any:
        """Anything else pydantic asks for: the real loader takes this one's place and answers.
        (The import system's own questions, such as `__path__`, are this module's to answer.)"""
        if name.startswith("__"):
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def end(code: int) -> NoReturn:
    """Exit with `code` now: flush what Python still buffers for the process, skip the teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to say there
            stream.flush()
    logging = sys.modules.get("logging")
    if logging is not None:  # asyncio imports it; handlers, if a library added some, are flushed
        with contextlib.suppress(Exception):
            logging.shutdown()
    os._exit(code)
