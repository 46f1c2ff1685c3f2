"""Text from outside (tracker, agents, hooks) made safe to print on a terminal as it is.

An agent's stderr or message reaches `run`'s text output inside a failure reason: written raw,
`ESC ]2;` retitled the pane, OSC 52 set the clipboard, `ESC [2J` cleared the screen and `ESC [6n`
made the terminal type into the input. Every control code, every bidirectional override (U+202E
turns the rest of the line around) and every lone surrogate (not encodable) is shown as its
escape, `\\x1b` or `\\u202e`, so a reader sees what was sent and the terminal obeys none of it.
"""

from __future__ import annotations

import re

# C0 and C1 controls except tab and newline, the bidi controls, and lone surrogates
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """`text` with every unsafe character written as its escape (tab and newline kept)."""
    return _UNSAFE.sub(_escape, text)
