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

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.ids import unsafe_id_reason
from vik_tui.config.loader import LoadResult
from vik_tui.config.schema import Workflow
from vik_tui.engine.processes.proc import describe_exit, run_shell, tail
from vik_tui.engine.service.paths import Layout
from vik_tui.engine.stages import templates

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifier"),
    "state": ("state", "status"),
    "description": ("description", "desc"),
}
PULL_MAX_BYTES = 64 * 1024 * 1024  # stdout of the pull command; docs/configuration.md "The pull command"
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
        if record.get(key) is not None:
            return record[key]
    return None


def _json_type(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }
    return names.get(type(value), type(value).__name__)


def parse_record(index: int, record: Any) -> Issue | Rejected:
    """Validate one array element; never raises."""
    if not isinstance(record, dict):
        return Rejected(index, None, f"record #{index} is not an object (got {_json_type(record)})")
    raw_id = _pick(record, "id")
    issue_id = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    if issue_id is None:
        reason = (
            "missing `id` (or `identifier`)"
            if raw_id is None
            else f"`id` must be a string or an integer (got {_json_type(raw_id)})"
        )
        return Rejected(index, None, f"record #{index}: {reason}")
    unsafe = unsafe_id_reason(issue_id)
    if unsafe:
        shown = repr(issue_id) if len(issue_id) <= 60 else repr(issue_id[:57]) + "..."
        return Rejected(index, issue_id, f"record #{index}: unsafe issue id {shown}: {unsafe}")
    title, state = record.get("title"), _pick(record, "state")
    if not isinstance(title, str) or not isinstance(state, str):
        return Rejected(index, issue_id, f"issue {issue_id}: {_title_state_problem(title, state)}")
    description = _pick(record, "description")
    if description is not None and not isinstance(description, str):
        description = json.dumps(description)
    extra = {k: v for k, v in record.items() if k not in CORE_KEYS}
    return Issue(id=issue_id, title=title, state=state, description=description or "", extra=extra)


def _title_state_problem(title: Any, state: Any) -> str:
    """What is wrong with a record's title or state (title first), for the rejection reason."""
    for name, value in (("title", title), ("state", state)):
        if value is None:
            return "missing `state` (or `status`)" if name == "state" else "missing `title`"
        if not isinstance(value, str):
            return f"`{name}` must be a string (got {_json_type(value)})"
    return "title and state must be strings"


def parse_issues(stdout: str) -> PullResult:
    """Parse the pull command's stdout: one JSON array; duplicates keep the first."""
    text = stdout.strip()
    if not text:
        return PullResult(error="pull command printed nothing (expected a JSON array)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text[:80].replace("\n", " ")
        return PullResult(
            error=f"pull command output is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {snippet!r}"
        )
    except RecursionError:
        return PullResult(error="pull command output is not usable JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer with more digits than Python will convert
        return PullResult(error=f"pull command output is not usable JSON: {exc}")
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
    """Run `sh -c command` in `cwd` with a timeout and parse its output.

    stdout is kept up to PULL_MAX_BYTES (more is an error: a cut JSON array is useless), stderr
    only as its tail, so a runaway command cannot take the supervisor's memory.
    """
    try:
        run = await run_shell(command, cwd, timeout_sec, stdout_limit=PULL_MAX_BYTES, stdout_cap=True)
    except OSError as exc:
        return PullResult(error=f"pull command could not start in {cwd}: {exc.strerror or exc}")
    err_tail = tail(run.stderr.decode("utf-8", "replace"), 2000)
    if run.over_limit:
        return PullResult(
            error=f"pull command printed more than {PULL_MAX_BYTES // 2**20} MiB on stdout (the limit); it was stopped",
            exit_code=run.returncode,
            stderr_tail=err_tail,
        )
    if run.timed_out:
        return PullResult(
            error=f"pull command timed out after {timeout_sec:g}s (process group killed)",
            exit_code=run.returncode,
            stderr_tail=err_tail,
        )
    if run.returncode != 0:
        detail = err_tail.strip()
        return PullResult(
            error=f"pull command {describe_exit(run.returncode)}" + (f": {detail}" if detail else ""),
            exit_code=run.returncode,
            stderr_tail=err_tail,
        )
    # in a thread: 10,000 records take 150 ms to check, which held the loop (a key press, the
    # agents' output) once per poll; the thread gives it back every few milliseconds
    result = await asyncio.to_thread(parse_issues, run.stdout.decode("utf-8", "replace"))
    result.exit_code, result.stderr_tail = run.returncode, err_tail
    return result


async def pull(workflow: Workflow, layout: Layout) -> PullResult:
    """One intake pull: render `issues.pull.command` (its context: the paths and `env`), run it
    in the workflow directory within `loop.pull_timeout_sec`, parse what it printed."""
    pull = workflow.issues.pull
    try:
        command = await templates.render_async(
            pull.command, templates.pull_context(layout.workflow_path, layout.root), "issues.pull.command"
        )
    except templates.TemplateError as exc:
        return PullResult(error=f"cannot render the pull command: {exc}")
    return await run_pull(command, layout.workflow_dir, float(workflow.loop.pull_timeout_sec))


def pull_check(result: LoadResult) -> list[Diagnostic]:
    """`doctor --deep`: run the pull command once and report what intake would reject."""
    assert result.workflow is not None
    workflow = result.workflow
    pointer = "issues.pull.command"
    line = result.lines.line_of(("issues", "pull", "command"))
    layout = Layout.for_workflow(workflow, result.path)
    try:
        command = templates.render(
            workflow.issues.pull.command, templates.pull_context(layout.workflow_path, layout.root), pointer
        )
    except templates.TemplateError as exc:
        return [Diagnostic(Severity.ERROR, pointer, "pull_failed", str(exc), line)]
    pulled = asyncio.run(run_pull(command, result.path.parent, float(workflow.loop.pull_timeout_sec)))
    if not pulled.ok:
        return [Diagnostic(Severity.ERROR, pointer, "pull_failed", pulled.error or "pull failed", line)]
    return [Diagnostic(Severity.WARNING, pointer, "issue_rejected", item.reason, line) for item in pulled.rejected]
