"""The differential harness: one corpus of inputs, run through vik and through vik-tui, compared.

The corpus (`tests/data/vik_diff/`) holds workflows for `doctor`, bad workflow files for the
lifecycle commands, provider streams (vik's own fixtures, our real captures, a few written to
reach every item type) and tracker records with templates. `collect` runs one tool (vik's binary
or `python -m vik_tui`) over all of it, as a user would, and reduces what it observed to
behaviours: an id such as `doctor/vik-warning/exit` mapped to a JSON value. vik's behaviours are
recorded in `tests/data/vik_goldens/` (`scripts/record_vik_goldens.py`), so the comparison runs
on machines without vik; where the binary is present the tests also run it live.

Both tools get the same treatment: the same temporary layout, the same fake `codex`/`claude` on
PATH (`FAKE_AGENT`: a prompt `FIXTURE:<file>` prints that provider stream, any other prompt is
answered with itself as a Codex message, so a session file shows the rendered prompt), and the
same reading of the session files they write. Paths of the run's temporary directory are
replaced by `<dir>`.

A difference is allowed only when `docs/vik-compatibility.md` lists its id in a row whose last
cell says `no: <reason>` (`listed_differences`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "vik_diff"
VIK_COMMIT = "a4b1e82"
GOLDENS = REPO / "tests" / "data" / "vik_goldens" / f"vik-{VIK_COMMIT}.json"
COMPAT_DOC = REPO / "docs" / "vik-compatibility.md"
ISSUE_ID = "T-1"
RUN_TIMEOUT_SEC = 120.0
CMD_TIMEOUT_SEC = 60.0

Observed = dict[str, Any]  # behaviour id -> JSON value

FAKE_AGENT = r"""#!/usr/bin/env python3
# The differential run's agent, on PATH as both `codex` and `claude`: a prompt FIXTURE:<file>
# prints that provider stream; any other prompt comes back as one Codex message.
import json, sys
prompt = sys.stdin.read()
if prompt.startswith("FIXTURE:"):
    with open(prompt[len("FIXTURE:"):].strip(), "rb") as fixture:
        sys.stdout.buffer.write(fixture.read())
else:
    for line in (
        {"type": "thread.started", "thread_id": "echo"},
        {"type": "item.completed", "item": {"id": "i0", "type": "agent_message", "text": prompt}},
        {"type": "turn.completed"},
    ):
        print(json.dumps(line))
"""


def vik_binary() -> Path | None:
    """vik's binary: `$VIK_BIN`, else `../shared/reference/vik-<commit>/vik` beside the checkout."""
    env = os.environ.get("VIK_BIN")
    candidate = Path(env) if env else REPO.parent / "shared" / "reference" / f"vik-{VIK_COMMIT}" / "vik"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def ours_command() -> list[str]:
    return [sys.executable, "-m", "vik_tui"]


# --- running a command ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = CMD_TIMEOUT_SEC) -> Ran:
    """Run in its own session; on timeout the whole group is killed (nothing is left behind)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{cmd} did not finish in {timeout:g}s: {err.decode(errors='replace')[-2000:]}") from None
    return Ran(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def base_env(work: Path) -> dict[str, str]:
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("codex", "claude"):
        agent = bin_dir / name
        agent.write_text(FAKE_AGENT)
        agent.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIK_", "RUST_"))}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", HOME=str(work / "home"), VIK_DIFF_MARK="marked")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    (work / "home").mkdir(exist_ok=True)
    return env


# --- doctor -----------------------------------------------------------------------------------

VIK_CODES = frozenset({"non_positive_number", "unknown_field", "empty_str", "empty_map", "unknown_agent"})


def doctor_cases() -> list[Path]:
    """Every workflow of the doctor corpus (a directory case is its `workflow.yml`)."""
    root = CORPUS / "doctor"
    cases = sorted(p for p in root.glob("*.yml"))
    cases += sorted(d / "workflow.yml" for d in root.iterdir() if (d / "workflow.yml").is_file())
    return sorted(cases, key=_doctor_name)


def _doctor_name(path: Path) -> str:
    return path.parent.name if path.name == "workflow.yml" else path.stem


def _findings(stdout: str) -> Any:
    """vik's findings (severity, pointer, code) from `--json`, sorted; None without JSON."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    found = []
    for item in [*data.get("errors", []), *data.get("warnings", [])]:
        code = item.get("code")
        name = next(iter(code)) if isinstance(code, dict) else code
        if name in VIK_CODES:
            found.append([item.get("severity"), item.get("pointer"), code])
    return sorted(found, key=json.dumps)


def collect_doctor(tool: list[str], work: Path, env: dict[str, str]) -> Observed:
    target = work / "doctor"
    shutil.copytree(CORPUS / "doctor", target)
    jobs: list[tuple[str, list[str]]] = []
    for case in doctor_cases():
        name = _doctor_name(case)
        path = str(target / case.relative_to(CORPUS / "doctor"))
        jobs.append((f"doctor/{name}/exit", [*tool, "doctor", "--json", path]))
        jobs.append((f"doctor/{name}/strict-exit", [*tool, "doctor", "--strict", "--json", path]))
    observed: Observed = {}
    for (key, _cmd), ran in zip(jobs, _parallel([cmd for _, cmd in jobs], work, env), strict=True):
        observed[key] = ran.code
        if key.endswith("/exit"):
            observed[key.replace("/exit", "/findings")] = _findings(ran.stdout) if ran.code in (0, 1) else None
    return observed


def _parallel(cmds: list[list[str]], cwd: Path, env: dict[str, str]) -> list[Ran]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda cmd: run(cmd, cwd, env), cmds))


# --- lifecycle commands -----------------------------------------------------------------------

LIFECYCLE = ("run", "status", "stop", "restart")


def collect_lifecycle(tool: list[str], work: Path, env: dict[str, str]) -> Observed:
    """Exit codes of the lifecycle commands on a missing and on an unparseable workflow."""
    target = work / "lifecycle"
    target.mkdir()
    (target / "unparseable.yml").write_text("agents: [\n")
    jobs = []
    for command in LIFECYCLE:
        for case in ("missing", "unparseable"):
            jobs.append((f"lifecycle/{command}/{case}-workflow/exit", [*tool, command, str(target / f"{case}.yml")]))
    return {key: ran.code for (key, _), ran in zip(jobs, _parallel([c for _, c in jobs], target, env), strict=True)}


# --- one run: templates, streams, after_create ------------------------------------------------


def stream_cases() -> list[tuple[str, str]]:
    """(runtime, stream name) for every provider stream of the corpus."""
    return sorted((p.parent.name, p.stem) for p in (CORPUS / "streams").glob("*/*.jsonl"))


def template_corpus() -> dict[str, Any]:
    data = yaml.safe_load((CORPUS / "templates.yml").read_text())
    assert isinstance(data, dict)
    return data


AFTER_CREATE = (
    'echo \'{{ issue.stage | default("none") }}|{% if issue.stage is defined %}{{ issue.stage }}{% endif %}'
    "|{% if false %}{{ issue.stage }}{% endif %}' > after_create.out"
)


# Templates that use a filter the engine lacks: our doctor refuses the workflow that holds one
# (vik's doctor does not read templates; vik fails the stage when it renders), so they run in a
# workflow of their own and the main run is not refused with them.
UNKNOWN_FILTER_TEMPLATES = frozenset({"tojson", "urlencode"})
REFUSED = "<refused before any stage ran>"


def run_workflow(work: Path, templates: Iterable[str] | None = None, streams: bool = True) -> dict[str, Any]:
    """One workflow whose single issue matches a stage per template and per stream."""
    corpus = template_corpus()
    wanted = set(corpus["templates"]) - UNKNOWN_FILTER_TEMPLATES if templates is None else set(templates)
    stages: dict[str, Any] = {}
    for name, template in corpus["templates"].items():
        if name in wanted:
            stages[f"tpl-{name}"] = {"when": {"state": "todo"}, "agent": "codex", "prompt": template}
    for runtime, name in stream_cases() if streams else []:
        agent = "claude" if runtime == "claude_code" else "codex"
        prompt = f"FIXTURE:{{{{ workflow_dir }}}}/streams/{runtime}/{name}.jsonl"
        stages[f"stream-{runtime}-{name}"] = {"when": {"state": "todo"}, "agent": agent, "prompt": prompt}
    return {
        # one attempt per stage (ours; vik has no retries and reads past the key): the failing
        # streams are not retried with backoff, nor held by the rate limit they report
        "loop": {"max_iterations": 1, "wait_ms": 100, "retry": {"max_attempts": 1}},
        "workspace": {"root": "./ws"},
        "agents": {
            "codex": {"runtime": "codex", "model": "m"},
            "claude": {"runtime": "claude_code", "model": "m"},
        },
        "issues": {"pull": {"command": "cat issues.json", "idle_sec": 1}},
        "issue": {"hooks": {"after_create": AFTER_CREATE}, "stages": stages},
    }


def collect_unknown_filters(tool: list[str], work: Path, env: dict[str, str]) -> Observed:
    """The templates with a filter the engine lacks: what each rendered, or that nothing ran."""
    root = work / "run-unknown-filters"
    root.mkdir()
    (root / "issues.json").write_text(json.dumps([template_corpus()["issue"]]))
    workflow = run_workflow(work, templates=UNKNOWN_FILTER_TEMPLATES, streams=False)
    (root / "workflow.yml").write_text(yaml.safe_dump(workflow, sort_keys=False, allow_unicode=True))
    run([*tool, "run", str(root / "workflow.yml")], root, env, timeout=RUN_TIMEOUT_SEC)
    homes = list((root / "ws" / "workflows").glob("*"))
    observed: Observed = {}
    for name in sorted(UNKNOWN_FILTER_TEMPLATES):
        if len(homes) != 1:
            observed[f"template/{name}/rendered"] = REFUSED
            continue
        messages = [r.get("text") for r in _session(homes[0], f"tpl-{name}") if r.get("kind") == "message"]
        observed[f"template/{name}/rendered"] = messages[-1] if messages else "<render error>"
    return observed


def collect_run(tool: list[str], work: Path, env: dict[str, str]) -> Observed:
    root = work / "run"
    root.mkdir()
    shutil.copytree(CORPUS / "streams", root / "streams")
    (root / "issues.json").write_text(json.dumps([template_corpus()["issue"]]))
    (root / "workflow.yml").write_text(yaml.safe_dump(run_workflow(work), sort_keys=False, allow_unicode=True))
    ran = run([*tool, "run", str(root / "workflow.yml")], root, env, timeout=RUN_TIMEOUT_SEC)
    observed: Observed = {"run/corpus-workflow/exit": ran.code, **collect_unknown_filters(tool, work, env)}
    homes = list((root / "ws" / "workflows").glob("*"))
    if len(homes) != 1:  # refused to run: every behaviour below is missing, which is a difference
        return observed
    home = homes[0]
    after_create = home / "issues" / ISSUE_ID / "after_create.out"
    observed["hooks/after_create-guarded-stage/output"] = after_create.read_text() if after_create.is_file() else None
    states = _vik_log_states(home / "logs")
    for name in set(template_corpus()["templates"]) - UNKNOWN_FILTER_TEMPLATES:
        records = _session(home, f"tpl-{name}")
        messages = [r.get("text") for r in records if r.get("kind") == "message"]
        observed[f"template/{name}/rendered"] = messages[-1] if messages else "<render error>"
    for runtime, name in stream_cases():
        stage = f"stream-{runtime}-{name}"
        records = _session(home, stage)
        for facet, value in stream_facets(records).items():
            observed[f"stream/{runtime}/{name}/{facet}"] = value
        outcome = _our_outcome(records) or states.get(stage)
        observed[f"stream/{runtime}/{name}/outcome"] = outcome
        observed[f"stream/{runtime}/{name}/vik-reading-agrees-with-outcome"] = (
            stream_facets(records)["vik-reading"] == outcome
        )
    return observed


def _session(home: Path, stage: str) -> list[dict[str, Any]]:
    """The first session file of a stage (uuid7 names sort by time), as records."""
    files = sorted((home / "sessions" / ISSUE_ID).glob(f"{stage}-*.jsonl"))
    if not files:
        return []
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def _our_outcome(records: list[dict[str, Any]]) -> str | None:
    """vik-tui's outcome record (the last one, carrying `outcome`): completed or failed."""
    for record in reversed(records):
        outcome = record.get("outcome")
        if isinstance(outcome, dict):
            return "completed" if outcome.get("state") == "completed" else "failed"
    return None


def _vik_log_states(logs: Path) -> dict[str, str]:
    """vik's own verdict per stage, from its log's `session terminal` / `session finished` records."""
    states: dict[str, str] = {}
    for log in sorted(logs.glob("vik.log*")):
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") not in ("session terminal", "session finished"):
                continue  # (the last `session finished` lines may be lost when vik exits)
            stage = next((s.get("stage") for s in record.get("spans", []) if s.get("stage")), None)
            if stage:
                states[stage] = str(record.get("state", "")).lower()
    return states


# --- what a reader built on vik's AgentEvent sees in a session file ---------------------------

TOOL_FIELDS = ("call_id", "name", "phase", "input", "output")
SUBAGENT_FIELDS = ("call_id", "action", "status", "target_ids")


def stream_facets(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A session file seen through vik's `AgentEvent` (vik's fields only), in facets.

    vik-tui's final outcome record (`outcome`, an `error` for a failed session) is ours, not the
    provider's: it is left out of `events`, but a vik reader counts it (`vik-reading`).
    """
    provider = [r for r in records if not (isinstance(r.get("outcome"), dict) and r.get("kind") == "error")]
    text = [r.get("text") for r in provider if r.get("kind") == "message"]
    tools = []
    for r in provider:
        if r.get("kind") == "tool_call":
            tools.append(["tool_call", *(r.get(f) for f in TOOL_FIELDS)])
        elif r.get("kind") == "subagent":
            tools.append(["subagent", *(r.get(f) for f in SUBAGENT_FIELDS)])
    tokens = [0, 0, 0]
    for r in provider:
        if r.get("kind") == "token_usage":
            for i, key in enumerate(("input", "output", "cache_read")):
                tokens[i] += int(r.get(key) or 0)
    events: list[Any] = []
    for r in provider:
        kind = r.get("kind")
        if kind == "session_started":
            events.append([kind, r.get("session_id")])
        elif kind == "unknown":
            events.append([kind, r.get("event_type")])
        elif kind == "error":
            events.append([kind, r.get("detail")])
        elif kind in ("completed", "rate_limit"):
            events.append([kind])
    return {
        "messages": text,
        "last-message": text[-1] if text else None,
        "tools": tools,
        "tokens": tokens,
        "events": events,
        "vik-reading": vik_reading(records),
    }


def vik_reading(records: Iterable[dict[str, Any]]) -> str:
    """vik's session rule (`src/session/mod.rs` `apply_event`): the first `completed` completes
    the session, the first `error` fails it; neither fails it when the agent exits."""
    for record in records:
        if record.get("kind") == "completed":
            return "completed"
        if record.get("kind") == "error":
            return "failed"
    return "failed"


# --- all of it --------------------------------------------------------------------------------


def collect(tool: list[str], work: Path) -> Observed:
    """Every behaviour of the corpus as `tool` shows it, paths of `work` replaced by `<dir>`."""
    work = work.resolve()
    env = base_env(work)
    observed: Observed = {}
    observed.update(collect_doctor(tool, work, env))
    observed.update(collect_lifecycle(tool, work, env))
    observed.update(collect_run(tool, work, env))
    return _scrub(observed, work)


def _scrub(value: Any, work: Path) -> Any:
    """Temporary paths to `<dir>` (also in vik's dashed workspace directory names)."""
    if isinstance(value, str):
        return value.replace(str(work), "<dir>").replace(str(work).replace("/", "-"), "-<dir>")
    if isinstance(value, list):
        return [_scrub(item, work) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, work) for key, item in value.items()}
    return value


def load_goldens() -> dict[str, Any]:
    data = json.loads(GOLDENS.read_text())
    assert isinstance(data, dict)
    return data


# --- comparing, and the listed differences ----------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    vik: Any
    ours: Any

    @property
    def agree(self) -> bool:
        return bool(self.vik == self.ours)


def compare(vik: Observed, ours: Observed) -> list[Row]:
    """One row per behaviour either side observed (a behaviour one side lacks is a difference)."""
    missing = object()
    rows = []
    for key in sorted(set(vik) | set(ours)):
        rows.append(Row(key, vik.get(key, missing), ours.get(key, missing)))
    return [Row(r.id, _missing(r.vik, missing), _missing(r.ours, missing)) for r in rows]


def _missing(value: Any, missing: object) -> Any:
    return "<not observed>" if value is missing else value


_ROW = re.compile(r"^\|\s*`(?P<id>[^`]+)`\s*\|.*\|\s*(?P<verdict>[^|]*?)\s*\|\s*$")


def doc_rows(text: str) -> dict[str, str]:
    """Behaviour id -> the last cell of its row, for every table row whose first cell is `id`."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group("id")] = match.group("verdict")
    return rows


def listed_differences(text: str) -> dict[str, str]:
    """Behaviour id -> reason, for rows that say `no: <reason>` (an empty reason does not count)."""
    listed = {}
    for key, verdict in doc_rows(text).items():
        match = re.match(r"^no:\s*(\S.*)$", verdict)
        if match:
            listed[key] = match.group(1)
    return listed


def unlisted(rows: list[Row], listed: dict[str, str]) -> list[Row]:
    return [row for row in rows if not row.agree and row.id not in listed]


def summary(rows: list[Row], listed: dict[str, str]) -> dict[str, int]:
    agree = sum(row.agree for row in rows)
    differ = [row for row in rows if not row.agree]
    listed_count = sum(row.id in listed for row in differ)
    return {"agree": agree, "listed": listed_count, "unlisted": len(differ) - listed_count}


def describe(rows: list[Row], cap: int = 400) -> str:
    def short(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= cap else text[:cap] + "…"

    return "\n".join(f"{row.id}\n  vik:  {short(row.vik)}\n  ours: {short(row.ours)}" for row in rows)
