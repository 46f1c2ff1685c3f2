"""Pydantic models for vik's workflow.yml plus vik-tui's extensions under `loop:`.

The models accept unknown keys (vik treats them as warnings, reported by diagnostics)
and hold values exactly as written; path resolution lives in `engine.paths`.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr

RUNTIMES: tuple[str, ...] = ("codex", "claude_code", "demo")
DEFAULT_EXECUTABLES: dict[str, str] = {"codex": "codex", "claude_code": "claude", "demo": ""}

# A YAML number: ints stay ints; no strings ("10"), no booleans, no .nan / .inf.
Number = StrictInt | Annotated[float, Strict(), Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class RetryConfig(_Model):
    """Backoff for failed stages: backoff_sec * 2^(attempt-1), capped."""

    max_attempts: StrictInt = 3
    backoff_sec: Number = 10
    max_backoff_sec: Number = 300


class BudgetConfig(_Model):
    """Ours: token ceilings (input + output, as the header counts them). None: no ceiling."""

    session_tokens: StrictInt | None = None  # one session over it is stopped, not retried
    daily_tokens: StrictInt | None = None  # the whole workflow per UTC day: dispatch waits for the next day


class LoopConfig(_Model):
    """vik's loop section and our limits (timeouts, retries, reconciliation)."""

    max_issue_concurrency: StrictInt = 10
    wait_ms: StrictInt = 200
    max_iterations: StrictInt | None = None
    stage_timeout_sec: Number = 3600
    stall_timeout_sec: Number = 900
    hook_timeout_sec: Number = 30
    cancel_grace_sec: Number = 5
    reconcile: StrictBool = False  # ours: stop a running stage whose issue left its state (vik never does)
    reconcile_grace_sec: Number = 30
    pull_timeout_sec: Number = 60
    retry: RetryConfig = Field(default_factory=RetryConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)  # ours


class WorkspaceConfig(_Model):
    """Where workspaces live; `root: null` means VIK_HOME or ~/.vik."""

    root: StrictStr | None = None


class AgentConfig(_Model):
    """One named agent: a runtime, a model, extra CLI args, optional executable."""

    runtime: StrictStr
    model: StrictStr  # required, as in vik
    # any key, as vik reads it (a serde_yaml Mapping); a key that is not a string is skipped when
    # the command line is built (`agents.args.forward_args`), not refused
    args: dict[Any, Any] = Field(default_factory=dict)
    command: StrictStr | None = None

    @property
    def program(self) -> list[str]:
        """The program and its leading words: `command` split like a shell would, else the CLI."""
        if self.command:
            try:
                words = shlex.split(self.command)
            except ValueError:
                words = [self.command]
            if words:
                return words
        return [DEFAULT_EXECUTABLES.get(self.runtime, self.runtime)]

    @property
    def executable(self) -> str:
        """The program's name, for messages such as "`codex` not found on PATH"."""
        return self.program[0]

    def resolved(self, workflow_dir: Path) -> AgentConfig:
        """A copy whose relative `command` path (e.g. ./bin/agent) resolves from the workflow dir."""
        program = self.program
        if not self.command or "/" not in program[0] or Path(program[0]).expanduser().is_absolute():
            if self.command and program[0].startswith("~"):
                return self.model_copy(update={"command": shlex.join([os.path.expanduser(program[0]), *program[1:]])})
            return self
        absolute = str(workflow_dir / program[0])
        return self.model_copy(update={"command": shlex.join([absolute, *program[1:]])})


class PullConfig(_Model):
    """The shell command that prints the tracker's issues as a JSON array."""

    command: StrictStr
    idle_sec: StrictInt = 5  # whole seconds, as vik: `2.5` is refused


class IssuesConfig(_Model):
    pull: PullConfig


class IssueHooks(_Model):
    after_create: StrictStr | None = None


class StageHooks(_Model):
    before_run: StrictStr | None = None
    after_run: StrictStr | None = None


class WhenConfig(_Model):
    state: StrictStr


class StageConfig(_Model):
    """A stage runs `agent` with one prompt source when an issue's state matches."""

    when: WhenConfig
    agent: StrictStr
    prompt: StrictStr | None = None
    prompt_file: StrictStr | None = None
    hooks: StageHooks = Field(default_factory=StageHooks)


class IssueConfig(_Model):
    hooks: IssueHooks = Field(default_factory=IssueHooks)
    stages: dict[str, StageConfig]


class WorkerConfig(_Model):
    """Ours, with OpenAI Symphony's names: run stage sessions on other machines over SSH.

    No hosts: everything runs on this machine. Each host is anything `ssh` accepts as a
    destination, so the user's ssh_config, keys, agent and ProxyJump apply."""

    ssh_hosts: list[StrictStr] = Field(default_factory=list)
    max_concurrent_agents_per_host: StrictInt | None = None
    ssh_config: StrictStr | None = None  # ours: passed to every `ssh` as `-F`
    health_check_sec: Number = 15  # ours: how often an unreachable host is checked again


class NotifyConfig(_Model):
    """Ours: a shell command run with each attention event's JSON on stdin (a failed stage,
    retries given up, a host down, a budget spent, intake failing, a drain finished)."""

    command: StrictStr | None = None
    timeout_sec: Number = 10
    intake_failures: StrictInt = 3  # intake failing this many cycles in a row is an attention event


class Workflow(_Model):
    """A whole workflow.yml. `workspace` absent vs `{}` matters (see engine.paths)."""

    loop: LoopConfig = Field(default_factory=LoopConfig)
    workspace: WorkspaceConfig | None = None
    agents: dict[str, AgentConfig]
    issues: IssuesConfig
    issue: IssueConfig
    worker: WorkerConfig | None = None  # ours (Symphony's names): SSH worker hosts
    notify: NotifyConfig = Field(default_factory=NotifyConfig)  # ours


KNOWN_FIELDS: dict[type[BaseModel], set[str]] = {}


def known_fields(model: type[BaseModel]) -> set[str]:
    """Field names (and aliases) a model accepts, for unknown-field warnings."""
    if model not in KNOWN_FIELDS:
        names: set[str] = set()
        for name, info in model.model_fields.items():
            names.add(name)
            if info.alias:
                names.add(info.alias)
        KNOWN_FIELDS[model] = names
    return KNOWN_FIELDS[model]
