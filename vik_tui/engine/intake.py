"""Pull issues from the tracker: run a shell command, parse one JSON array, keep what is valid.

Nothing here stops the loop: a failed command or a bad payload yields a PullResult whose
`error` says why, and bad records are dropped one by one with a reason.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vik_tui.engine.paths import unsafe_id_reason
from vik_tui.engine.proc import kill_group, tail

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifier"),
    "state": ("state", "status"),
    "description": ("description", "desc"),
}
CORE_KEYS = {"id", "identifier", "title", "state", "status", "description", "desc"}


@dataclass(frozen=True)
class Issue:
    """One tracker issue. `extra` keeps every other field for templates (`issue.<field>`)."""

    id: str
    title: str
    state: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def template_fields(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update(id=self.id, title=self.title, state=self.state, description=self.description)
        return data


@dataclass(frozen=True)
class Rejected:
    """A record we dropped, and why (`index` is its position in the array)."""

    index: int
    issue_id: str | None
    reason: str


@dataclass
class PullResult:
    issues: list[Issue] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    error: str | None = None
    exit_code: int | None = None
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def _pick(record: dict[str, Any], name: str) -> Any:
    for key in ALIASES.get(name, (name,)):
        if key in record:
            return record[key]
    return None


def parse_record(index: int, record: Any) -> Issue | Rejected:
    """Validate one array element; never raises."""
    if not isinstance(record, dict):
        return Rejected(index, None, f"record #{index} is not an object (got {type(record).__name__})")
    raw_id = _pick(record, "id")
    issue_id = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    if issue_id is None:
        reason = "missing `id`" if raw_id is None else f"`id` must be a string (got {type(raw_id).__name__})"
        return Rejected(index, None, f"record #{index}: {reason}")
    unsafe = unsafe_id_reason(issue_id)
    if unsafe:
        return Rejected(index, issue_id, f"unsafe issue id {issue_id!r}: {unsafe}")
    title, state = record.get("title"), _pick(record, "state")
    for name, value in (("title", title), ("state", state)):
        if value is None:
            return Rejected(index, issue_id, f"issue {issue_id}: missing `{name}`")
        if not isinstance(value, str):
            return Rejected(index, issue_id, f"issue {issue_id}: `{name}` must be a string (got {type(value).__name__})")
    description = _pick(record, "description")
    if description is not None and not isinstance(description, str):
        description = json.dumps(description)
    extra = {k: v for k, v in record.items() if k not in CORE_KEYS}
    return Issue(id=issue_id, title=title, state=state, description=description or "", extra=extra)


def parse_issues(stdout: str) -> PullResult:
    """Parse the pull command's stdout: one JSON array; duplicates keep the first."""
    text = stdout.strip()
    if not text:
        return PullResult(error="pull command printed nothing (expected a JSON array)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text[:80].replace("\n", " ")
        return PullResult(error=f"pull command output is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {snippet!r}")
    if not isinstance(data, list):
        return PullResult(error=f"pull command output must be a JSON array (got {type(data).__name__})")
    result = PullResult()
    seen: set[str] = set()
    for index, record in enumerate(data):
        parsed = parse_record(index, record)
        if isinstance(parsed, Rejected):
            result.rejected.append(parsed)
        elif parsed.id in seen:
            result.rejected.append(Rejected(index, parsed.id, f"duplicate issue id {parsed.id!r} (first one wins)"))
        else:
            seen.add(parsed.id)
            result.issues.append(parsed)
    return result


async def run_pull(command: str, cwd: Path, timeout_sec: float) -> PullResult:
    """Run `sh -c command` in `cwd` with a timeout and parse its output."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", command, cwd=str(cwd),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return PullResult(error=f"pull command could not start: {exc}")
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_sec)
    except asyncio.TimeoutError:
        await kill_group(proc, grace_sec=1.0)
        return PullResult(error=f"pull command timed out after {timeout_sec:g}s")
    except asyncio.CancelledError:
        await kill_group(proc, grace_sec=1.0)
        raise
    err_tail = tail(stderr.decode("utf-8", "replace"), 2000)
    if proc.returncode != 0:
        return PullResult(
            error=f"pull command exited with code {proc.returncode}" + (f": {err_tail.strip()}" if err_tail.strip() else ""),
            exit_code=proc.returncode, stderr_tail=err_tail,
        )
    result = parse_issues(stdout.decode("utf-8", "replace"))
    result.exit_code, result.stderr_tail = proc.returncode, err_tail
    return result
