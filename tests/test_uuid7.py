"""Session ids (`engine/uuid7.py`): RFC 9562 version 7 UUIDs whose text sorts by creation, in
the layout of the `uuid6` package's `uuid7()` that named session files before."""

from __future__ import annotations

import time
import uuid

import pytest

from vik_tui.engine import uuid7 as ids
from vik_tui.engine.service.paths import UUID_LEN


def test_a_session_id_is_a_version_7_uuid_of_now() -> None:
    before = time.time_ns() // 1_000_000
    made = ids.uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after + 1  # the first 48 bits: Unix milliseconds
    text = str(made)
    assert len(text) == UUID_LEN and uuid.UUID(text) == made and text[14] == "7"


def test_ids_made_in_one_process_sort_by_creation_even_within_a_millisecond() -> None:
    made = [str(ids.uuid7()) for _ in range(5000)]  # many per millisecond
    assert made == sorted(made) and len(set(made)) == len(made)


def test_a_clock_that_steps_back_does_not_reorder_them(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ids.uuid7()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_000)  # 1970-01-12: far back
    later = [ids.uuid7() for _ in range(3)]
    assert [str(first), *map(str, later)] == sorted([str(first), *map(str, later)])
    assert all(u.version == 7 for u in later)


def test_the_random_bits_are_random() -> None:
    """74 random bits each: the 12 after the version and the 62 after the variant both vary."""
    made = [ids.uuid7().int for _ in range(200)]
    assert len({(u >> 64) & 0xFFF for u in made}) > 100
    assert len({u & ((1 << 62) - 1) for u in made}) == 200
