"""Finished work stays finished: which (issue, stage) completed for which tracker state, on disk.

vik keeps this in memory only, so its restart runs again every stage that completed while its
issue kept the state (a plan waiting for human review is re-planned and paid for again). We
keep `service/completed.json`, written atomically on each change, and do not dispatch a stage
it holds while the issue shows that state, after any restart. The record of an issue is
dropped once a pull shows the issue in another state (so a move back runs the stage again);
an issue missing from a pull keeps its record (an empty or partial pull is not a move).
A user's retry (`r`, the API's) runs the stage on purpose and forgets the record first.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from vik_tui.engine.service.atomic import write_atomic

COMPLETED_FILE = "completed.json"
WAITING_REASON = "completed; waiting for the tracker to move"


class CompletedStore:
    """`{issue id: {stage: state it completed for}}`, mirrored to one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: dict[str, dict[str, str]] = {}
        self.load_error: str | None = None  # why the file on disk could not be read, if it could not

    def load(self) -> None:
        """Read the file; an unreadable one is reported (`load_error`) and treated as empty."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.load_error = f"cannot read {self.path}: {exc}"
            return
        if not isinstance(data, dict):
            self.load_error = f"cannot read {self.path}: not a JSON object"
            return
        self._done = {
            str(issue): {str(stage): state for stage, state in stages.items() if isinstance(state, str)}
            for issue, stages in data.items()
            if isinstance(stages, dict)
        }

    def holds(self, issue_id: str, stage: str, state: str) -> bool:
        """True when `stage` completed for the issue in `state` and the issue has not moved since."""
        return self._done.get(issue_id, {}).get(stage) == state

    def record(self, issue_id: str, stage: str, state: str) -> None:
        """Remember a completion. Raises OSError when the file cannot be written (kept in memory)."""
        self._done.setdefault(issue_id, {})[stage] = state
        self._save()

    def forget(self, issue_id: str, stage: str) -> None:
        """A retry on purpose: the stage may run again. Raises OSError like `record`."""
        stages = self._done.get(issue_id)
        if stages is None or stage not in stages:
            return
        del stages[stage]
        if not stages:
            del self._done[issue_id]
        self._save()

    def seen(self, states: dict[str, str]) -> bool:
        """A pull listed these issues (id -> state): drop the records of the ones that moved.
        Returns True when something was dropped (and saved). Raises OSError like `record`."""
        changed = False
        for issue_id in [i for i in self._done if i in states]:
            stages = self._done[issue_id]
            kept = {stage: state for stage, state in stages.items() if state == states[issue_id]}
            if kept != stages:
                changed = True
                if kept:
                    self._done[issue_id] = kept
                else:
                    del self._done[issue_id]
        if changed:
            self._save()
        return changed

    def _save(self) -> None:
        """The whole record, replaced atomically with fsync (orjson: the stdlib's indented
        encoder is pure Python and this is written at every completion)."""
        write_atomic(self.path, orjson.dumps(self._done, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
