"""How an agent's `args:` mapping becomes CLI flags, plus small JSON-coercion helpers.

`forward_args` must match the Rust tool vik exactly, so that a workflow.yml written for vik
starts the same command line here. The helpers below are shared by the runtime mappers: CLI
output is untrusted JSON that changes between releases, so every field is read defensively
(a wrong type becomes "absent", never an exception).
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime
from typing import Any


def _number_text(value: int | float) -> str:
    """A YAML number as vik prints it (serde_yaml's Number): floats keep their `.0`."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and "e" not in repr(value):
        return f"{value:.1f}"
    return repr(value) if isinstance(value, float) else str(value)


def forward_args(args: dict[Any, Any]) -> list[str]:
    """Turn an agent's `args` into command-line words, in key order, exactly as vik does.

    The key is used as written (`--config`, `-c`, or a bare `resume`: vik adds no dashes); a
    string or number gives `key value`; `true` gives `key`; `false` and null are omitted; a list
    gives `key a,b` with only its string items; a mapping, and a key that is not a string, are
    omitted.
    """
    out: list[str] = []
    for key, value in args.items():
        if not isinstance(key, str) or value is None or value is False:
            continue
        if value is True:
            out.append(key)
        elif isinstance(value, str):
            out += [key, value]
        elif isinstance(value, int | float):
            out += [key, _number_text(value)]
        elif isinstance(value, list | tuple):
            out += [key, ",".join(item for item in value if isinstance(item, str))]
    return out


# --- defensive readers for provider JSON -------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (so `.get` chains never fail)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    """`value` if it is a string, else None (numbers are not silently turned into ids)."""
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """An integer from an int or a finite float; bools and everything else are None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    """A finite float from an int or float; bools and everything else are None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def compact_json(value: Any) -> str:
    """Compact JSON for showing a structured tool input on one line."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def epoch_to_iso(value: Any) -> str | None:
    """A reset time as ISO-8601 UTC: epoch seconds (or milliseconds) or an existing string."""
    if isinstance(value, str):
        return value or None
    seconds = as_float(value)
    if seconds is None:
        return None
    if seconds > 1e11:  # milliseconds, not seconds (1e11 s is the year 5138)
        seconds /= 1000
    return _iso_of_epoch(seconds)


@functools.lru_cache(maxsize=64)
def _iso_of_epoch(seconds: float) -> str | None:
    """Kept: a provider repeats the same reset time on every rate-limit line of a window
    (Codex: on ~1 % of a flood's lines, and formatting it was 1 % of the flood's CPU)."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None
