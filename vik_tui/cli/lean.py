"""What `vik-tui run` does to its own process, as the program (not when a caller runs it
in-process): it loads no TLS, and it ends without the interpreter's teardown.

No TLS: nothing in a supervisor's process speaks TLS. The HTTP API is plain HTTP on a unix socket
and on a loopback (or token-guarded) TCP port, SSH workers use the `ssh` program, and trackers,
hooks and notify are commands. Yet asyncio imports `ssl`, and pydantic imports `hashlib` (through
`secrets` and `hmac`), and each maps OpenSSL's libraries: ~5 MiB resident and ~10 ms before the
first line. Both are optional in the standard library (CPython builds without OpenSSL): a None in
`sys.modules` makes their import raise ImportError (the import system's documented way to halt
one), which asyncio and hashlib catch; asyncio then has no TLS, and hashlib keeps its built-in
md5, sha1, sha2, sha3 and blake2. `tests/test_lean_run.py` holds a run to it, API and all.

No teardown: once `run` is over, the interpreter would free every object and module one by one
before exiting (80-100 ms of CPU after the last line, at 45 MiB). Nothing needs it: the engine
writes its files with `os.write` on raw descriptors, so that a kill -9 loses nothing (the chaos
tests), and there is nothing in a Python buffer that a teardown would flush. The standard
streams and logging are flushed, then `os._exit` (as the daemon of `run -d` already ends).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

WITHOUT = ("ssl", "_hashlib")  # the standard library's two users of OpenSSL


def leave_out_tls() -> None:
    """Before asyncio is imported: `import ssl` and `import _hashlib` raise ImportError from now on
    (a module already loaded stays as it is)."""
    for name in WITHOUT:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: the import system's "halted"


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
