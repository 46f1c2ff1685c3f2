"""Which command line and which output mapper each `runtime:` uses.

The supervisor only needs these two things per runtime, so a runtime is a small record of two
callables; adding a provider means adding one entry here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vik_tui.agents import claude_code, codex
from vik_tui.agents.args import forward_args
from vik_tui.agents.events import AgentEvent
from vik_tui.config.schema import AgentConfig

DEMO_MODULE = "vik_tui.demo.agent"


class Mapper(Protocol):
    """Turns one decoded stdout JSON value into zero or more AgentEvents; never raises."""

    def feed(self, obj: object) -> list[AgentEvent]: ...


@dataclass(frozen=True, slots=True)
class RuntimeAdapter:
    """A runtime's command line builder and a factory for a fresh per-session mapper."""

    runtime: str
    build_command: Callable[[AgentConfig], list[str]]
    new_mapper: Callable[[], Mapper]


def build_demo_command(agent: AgentConfig) -> list[str]:
    """The bundled fake agent (speaks Codex JSONL); `command` replaces the program if set."""
    prefix = agent.program if agent.command else [sys.executable, "-m", DEMO_MODULE]
    return [*prefix, *forward_args(agent.args)]


RUNTIME_ADAPTERS: dict[str, RuntimeAdapter] = {
    "codex": RuntimeAdapter("codex", codex.build_command, codex.CodexMapper),
    "claude_code": RuntimeAdapter("claude_code", claude_code.build_command, claude_code.ClaudeMapper),
    "demo": RuntimeAdapter("demo", build_demo_command, codex.CodexMapper),
}


def adapter_for(runtime: str) -> RuntimeAdapter:
    """The adapter for `runtime`; KeyError naming the known runtimes if there is none."""
    try:
        return RUNTIME_ADAPTERS[runtime]
    except KeyError:
        known = ", ".join(sorted(RUNTIME_ADAPTERS))
        raise KeyError(f"unknown agent runtime {runtime!r} (known: {known})") from None
