"""The frames the supervisor and its reader processes (`offload`, `reader_worker`) exchange on
their socket: `<II` (the length of the pickled head, the length of the payload), the head (a
tuple whose first item names the frame), the payload (raw bytes: lines, or records).

pickle is imported at the first frame, not with this module: a supervisor whose agents never
flood starts no reader and needs none of it (hot reload's watchfiles imports it anyway, through
multiprocessing; `run --no-watch` does without).
"""

from __future__ import annotations

import struct
from typing import Any

HEADER = struct.Struct("<II")
OPEN, LINES, CLOSE = "open", "lines", "close"  # supervisor -> reader
DONE, FAILED, CRASHED = "done", "failed", "crashed"  # reader -> supervisor


def encode_head(head: tuple[Any, ...], payload_size: int) -> bytes:
    """The frame's header and pickled head (its payload follows)."""
    import pickle

    meta = pickle.dumps(head, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(meta), payload_size) + meta


def frame(head: tuple[Any, ...], payload: bytes = b"") -> bytes:
    return encode_head(head, len(payload)) + payload


def decode_head(meta: bytes | memoryview) -> tuple[Any, ...]:
    import pickle

    head: tuple[Any, ...] = pickle.loads(meta)
    return head
