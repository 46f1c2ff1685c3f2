"""Timestamps in one format everywhere (UTC ISO-8601 with milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_seconds(moment: datetime) -> str:
    """A UTC time to the second, `2026-01-15T12:00:01Z` (due times, resets, midnights)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_in(seconds: float) -> str:
    """The wall-clock time `seconds` from now (for display of due times)."""
    return iso_seconds(datetime.now(UTC) + timedelta(seconds=seconds))
