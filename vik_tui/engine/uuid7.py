"""Session ids: UUID version 7 (RFC 9562 §5.7), whose text sorts by creation time.

A session file is named `<stage>-<uuid7>.jsonl`, and the engine and the UI sort an issue's
sessions by that text (`stages.replay`, `view`). The layout is the `uuid6` package's `uuid7()`
that made them before: 48 bits of Unix milliseconds, the version, 74 random bits and the RFC
variant; a millisecond that is not later than the last one is bumped past it, so ids made in
one process are strictly increasing even within a millisecond or when the clock steps back.

Made here rather than imported: `uuid6` looks up its own version with `importlib.metadata` when
it is imported, which loads zipfile, email and csv into every supervisor (with pydantic's plugin
lookup, `cli.lean`, 2 MiB of its resident memory); and Python 3.11's `uuid.UUID` refuses
`version=7`, so the bits are set here.
"""

from __future__ import annotations

import secrets
import time
import uuid

_MS_BITS = (1 << 48) - 1
_VERSION = 7 << 76  # bits 48-51 of the 128
_VARIANT = 0b10 << 62  # bits 64-65: RFC 9562's variant
_RAND_A = ((1 << 12) - 1) << 64  # the 12 random bits after the version
_RAND_B = (1 << 62) - 1  # the 62 random bits after the variant

_last_ms = -1


def uuid7() -> uuid.UUID:
    """A new version 7 UUID, later than every one this process made before."""
    global _last_ms
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms + 1
    _last_ms = ms
    rand = secrets.randbits(74)
    value = ((ms & _MS_BITS) << 80) | _VERSION | (((rand >> 62) << 64) & _RAND_A) | _VARIANT | (rand & _RAND_B)
    return uuid.UUID(int=value)
