"""Text helpers: make agent output safe for the terminal, and format numbers compactly.

Agent output is untrusted: an escape sequence written into a `Log` reaches the real terminal
(measured: `\x1b[2J` cleared it). Everything shown from an agent or a tracker goes through
`sanitize()` first; text put into markup, through `markup_text()`.
"""

from __future__ import annotations

import math
import re

# colours and text styles (SGR: CSI ... m): formatting of tools' output, dropped
_SGR = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*m")
# CSI (incl. 8-bit \x9b), OSC (ended by BEL or ST), DCS/SOS/PM/APC strings, two-byte ESC
# sequences, then any remaining C0/C1 control except \t \n \r (handled separately). A string
# left open ends at the line's end: shown, it must not swallow the lines after it.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# bidirectional controls (U+202E turns the rest of a line around: a title can make a row say
# what it does not) and lone surrogates (a terminal write cannot encode them): shown as escapes
_INVISIBLE = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def sanitize(text: str) -> str:
    """Drop colours (SGR), show every other escape sequence and control character as its
    escape (`\\x1b]52;c;…\\x07`: the reader sees what was sent, the terminal obeys none of
    it, as `run`'s text output does), collapse `\\r` progress updates, expand tabs; show bidi
    controls and lone surrogates as escapes.

    `"10%\\r50%\\r100%"` becomes `"100%"`: a carriage return means "overwrite this line", so
    only the last non-empty segment of each line is kept.
    """
    if not text:
        return ""
    if _NEEDS_WORK.search(text):
        text = text.replace("\r\n", "\n")
        text = _ESCAPES.sub(_escape, _SGR.sub("", text))
        if "\r" in text:
            text = "\n".join(_last_segment(line) for line in text.split("\n"))
    if "\t" in text:
        text = text.expandtabs(4)
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub(_escape, text)
    return text


def _last_segment(line: str) -> str:
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


def one_line(text: str | None, limit: int = 200) -> str:
    """First line of sanitized text, shortened with an ellipsis; marks that more lines exist."""
    if not text:
        return ""
    clean = sanitize(text).strip("\n")
    first, _, rest = clean.partition("\n")
    more = bool(rest.strip())
    if len(first) > limit:
        return first[: limit - 1] + "…"
    return first + (" …" if more else "")


def truncate(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def human_count(value: int | float | None) -> str:
    """12345 → `12.3k`, 4_100_000 → `4.1M`; small numbers as they are."""
    n = float(value or 0)
    for unit, size in (("M", 1_000_000.0), ("k", 1_000.0)):
        if n >= size:
            scaled = n / size
            return f"{scaled:.1f}{unit}" if scaled < 100 else f"{scaled:.0f}{unit}"
    return str(int(n))


def mmss(seconds: float | None) -> str:
    """Elapsed time as `m:ss` (minutes keep counting past an hour: `75:02`)."""
    if seconds is None:
        return ""
    total = int(seconds)
    return f"{total // 60}:{total % 60:02d}"


def wrap_lines(lines: list[str], width: int) -> list[str]:
    """Lines no wider than `width`, a long one continued on the next lines under its own
    indentation (the reader shows whole sessions; a `Log` cuts what does not fit)."""
    width = max(width, 20)
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * min(len(line) - len(line.lstrip(" ")), width // 2)
        out.append(line[:width])
        rest, room = line[width:], width - len(indent)
        while rest:
            out.append(indent + rest[:room])
            rest = rest[room:]
    return out


def retry_due(seconds: float | None) -> str:
    """When a pending retry starts: its countdown, or once the backoff is over and it still
    waits (every slot taken, or no SSH host with room), that it waits for a slot; not `0s`."""
    return countdown(seconds) if seconds is None or seconds > 0 else "waits for a slot"


def countdown(seconds: float | None) -> str:
    """Whole seconds left, rounded up so a countdown never shows 0 while still waiting."""
    if seconds is None:
        return ""
    return f"{max(0, math.ceil(seconds - 1e-9))}s"


WORD_JOINER = "\u2060"  # zero width: what keeps a trailing backslash from escaping our next tag


def markup_text(text: str) -> str:
    """Outside text (ids, titles, states, stage and host names, reasons, agent text, paths,
    error messages) put into a markup string of ours: the one way it gets there. Sanitized
    (`sanitize`: control codes dropped, bidi controls shown), then every `[` escaped, so no tag
    can start inside it (Textual's `escape` misses `[$error]`, `[ b]`, `[A=1]`, an unclosed
    `[@click=a…` cut by `one_line` that a later `]` of ours closed, and a trailing backslash).
    A backslash just before a tag always escapes it in Textual's markup, so a trailing one is
    followed by an invisible word joiner. Text bound for a widget that parses no markup (a
    `Log`, a `Text` cell, a toast) needs only `sanitize`."""
    escaped = sanitize(text).replace("[", "\\[")
    return escaped + WORD_JOINER if escaped.endswith("\\") else escaped
