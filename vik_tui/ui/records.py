"""Session records (the agent events of agents/events.py) → plain lines for a pane's Log.

A pure function of (events, clock, glyphs, width) so it can run in a thread for a replay of
thousands of records, and be tested without a terminal. Layout of every line:

    HH:MM:SS  text            agent message (continuation lines indented by 10)
    HH:MM:SS  ~ text          reasoning (dimmed by the highlighter)
    HH:MM:SS  ▸ shell  cmd    tool start;   ✓ exit 0 / ✗ exit 2 + 3 output lines on completion
    HH:MM:SS  [error] msg     provider error; [warn] for transient ones
    HH:MM:SS  ── completed · exit 0 · tokens … ──   the outcome, last (ASCII: "--")
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterable

from vik_tui.agents import events as ev
from vik_tui.engine.engine_events import plural
from vik_tui.engine.view import UNREADABLE_RECORD
from vik_tui.ui.clock import Clock
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.text import human_count, one_line, sanitize

INDENT = " " * 10
OUTPUT_PREVIEW_LINES = 3
DEFAULT_WIDTH = 100
MIN_WRAP = 24

# Provider lines that session files keep as `unknown` (vik does) but that say nothing to a
# reader: a turn always starts.
PROVIDER_NOISE = frozenset({"turn.started"})


def format_records(
    records: Iterable[ev.AgentEvent],
    clock: Clock,
    glyphs: Glyphs,
    width: int = DEFAULT_WIDTH,
    full: bool = False,
    errors_shown: set[str] | None = None,
) -> list[str]:
    """Every event's lines, in order. Odd values never raise: they become a short line.

    `full` (the reader view): every output line and the whole tool input, wrapped, never
    clipped; otherwise outputs show their first lines and a line never exceeds `width`."""
    out: list[str] = []
    width = max(MIN_WRAP + len(INDENT), width or DEFAULT_WIDTH)
    wrap = width - len(INDENT)
    # the final error is said once in the body: the outcome line leaves out a reason an `[error]`
    # line of the session already said (with the pane's header, it was three times)
    shown = errors_shown if errors_shown is not None else set()
    for record in records:
        try:
            if isinstance(record, ev.Error) and record.detail:
                shown.add(one_line(sanitize(str(record.detail)), 160))
            elif isinstance(record, ev.Outcome) and one_line(record.reason, 160) in shown:
                record = dataclasses.replace(record, reason="")
            out.extend(format_record(record, clock, glyphs, wrap, full))
        except Exception as exc:  # a malformed record must not break the pane
            out.append(f"{clock.hhmmss(None)}  [error] unreadable record ({type(exc).__name__})")
    if full:
        return out
    # nothing wider than the pane: no horizontal scrollbar, no half-hidden lines
    return [line if len(line) <= width else line[: width - 1] + "…" for line in out]


def format_record(
    event: ev.AgentEvent, clock: Clock, glyphs: Glyphs, wrap: int = DEFAULT_WIDTH, full: bool = False
) -> list[str]:
    stamp = clock.hhmmss(event.ts)
    match event:
        case ev.Message():
            text = sanitize(str(event.text or "")).strip("\n")
            return _block(stamp, {"reasoning": "~ ", "user": "> "}.get(event.role, ""), text, wrap)
        case ev.ToolCall():
            return _tool(stamp, event, glyphs, wrap, full)
        case ev.Subagent():
            status = event.status
            mark = glyphs.tool if status == "started" else (glyphs.ok if status == "completed" else glyphs.bad)
            detail = one_line(event.description, wrap)
            return [f"{stamp}  {mark} agent {one_line(event.name, 40)}  {detail}".rstrip()]
        case ev.Error():
            tag = "[error]" if event.fatal else "[warn]"
            return _block(stamp, f"{tag} ", sanitize(str(event.detail or "error")), wrap)
        case ev.Completed():
            return [f"{stamp}  {glyphs.ok} turn completed"]
        case ev.Outcome():
            # a final answer that differs from the last message is kept on the outcome record
            result = _block(stamp, "", sanitize(event.result), wrap) if event.result else []
            return [*result, _outcome(stamp, event, glyphs.rule)]
        case ev.SessionStarted():
            bits = [b for b in (event.model, event.session_id) if b]
            return [f"{stamp}  ~ session started" + (f" ({one_line(' · '.join(map(str, bits)), 80)})" if bits else "")]
        case ev.TokenUsage() | ev.RateLimit():
            return []  # shown in the header and the issue list, not worth a line each
        case ev.Unknown(event_type=str() as kind) if kind in PROVIDER_NOISE:
            return []
        case ev.Unknown(raw=dict() as raw):
            label = raw.get("type") or raw.get("kind") or raw
            return [f"{stamp}  ~ unhandled event {one_line(str(label), 60)}"]
        case ev.Unknown():
            return [f"{stamp}  ~ unhandled event {one_line(str(event.raw), 60)}"]
    return [f"{stamp}  ~ {one_line(event.kind, 40)} record"]


def _block(stamp: str, prefix: str, text: str, wrap: int) -> list[str]:
    """First line after the time stamp, the rest indented; long lines wrapped to the pane."""
    lines: list[str] = []
    width = max(MIN_WRAP, wrap - len(prefix))
    for paragraph in text.split("\n") or [""]:
        if len(paragraph) <= width:
            lines.append(paragraph)
        else:
            lines.extend(textwrap.wrap(paragraph, width, break_long_words=True, break_on_hyphens=False) or [""])
    # continuations keep a reasoning/user/error marker so the highlighter, which sees one
    # line at a time, styles them like the first line
    cont = prefix if prefix in ("~ ", "> ", "[error] ", "[warn] ") else " " * len(prefix)
    return [f"{stamp}  {prefix}{lines[0]}"] + [f"{INDENT}{cont}{line}" if line else "" for line in lines[1:]]


def _tool(stamp: str, event: ev.ToolCall, glyphs: Glyphs, wrap: int, full: bool = False) -> list[str]:
    name = one_line(str(event.name or "tool"), 40)
    status = event.status
    room = max(wrap - len(name) - 4, 10)
    if full:
        command = sanitize(str(event.input or "")).replace("\n", " ⏎ ")
    elif _is_path_like(name):
        command = keep_end(one_line(event.input, 10_000), room)  # the file name is the point
    else:
        command = one_line(event.input, room)
    if status == "started":
        return [f"{stamp}  {glyphs.tool} {name}  {command}".rstrip()]
    mark = glyphs.ok if status == "completed" else glyphs.bad
    code = event.exit_code
    head = f"{stamp}  {mark} exit {code}" if code is not None else f"{stamp}  {mark} {name}  {command}".rstrip()
    lines = [head]
    output = event.output
    if output:
        body = [line for line in sanitize(str(output)).rstrip("\n").split("\n")]
        shown = body if full else body[:OUTPUT_PREVIEW_LINES]
        for line in shown:
            lines.append(f"{INDENT}│ {line}")
        hidden = len(body) - len(shown)
        if hidden > 0:
            lines.append(f"{INDENT}│ {glyphs.more} {plural(hidden, 'more line')} (e reads it all)")
    return lines


PATH_TOOLS = ("edit", "write", "read", "file", "patch", "apply_patch", "multiedit", "notebookedit")


def _is_path_like(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in PATH_TOOLS)


def keep_end(text: str, width: int) -> str:
    """Shorten from the left (`…/deep/dir/file.py`): for paths the end is what matters."""
    if len(text) <= width:
        return text
    head, _, _rest = text.partition(" ")
    if head in ("update", "add", "delete", "create") and len(head) + 3 < width:
        return f"{head} …{text[-(width - len(head) - 2) :]}"  # `update …/dir/file.py`
    return "…" + text[-(width - 1) :]


def _outcome(stamp: str, event: ev.Outcome, rule: str) -> str:
    state = str(event.state or "ended")
    parts = [state]
    reason = one_line(event.reason, 160)
    if reason and reason != state:
        parts.append(reason)
    if event.exit_code is not None:
        parts.append(f"exit {event.exit_code}")
    if event.signal is not None:
        parts.append(f"signal {event.signal}")
    tokens = event.tokens if isinstance(event.tokens, dict) else {}
    if tokens.get("input") or tokens.get("output"):
        parts.append(f"tokens in {human_count(tokens.get('input'))} out {human_count(tokens.get('output'))}")
    return f"{stamp}  {rule} {' · '.join(parts)} {rule}"


def merge_replay(replayed: list[ev.AgentEvent], live: list[ev.AgentEvent]) -> list[ev.AgentEvent]:
    """The live events not already in the replay.

    The replay reads the file while the agent may still be appending: live batches that arrived
    meanwhile may or may not be in it. The longest tail of `replayed` equal to a head of `live`
    is the overlap (events carry millisecond time stamps, so equal means same).
    """
    if not live:
        return []
    last = replayed[-1] if replayed else None
    if isinstance(last, ev.Error) and last.ts is None and str(last.detail).startswith(UNREADABLE_RECORD):
        replayed = replayed[:-1]  # a line caught half-written; its live copy follows
    for k in range(min(len(replayed), len(live)), 0, -1):
        if replayed[-k:] == live[:k]:
            return live[k:]
    return live
