"""Desktop notifications through the terminal: OSC 9 (iTerm2, WezTerm, Windows Terminal,
kitty, Ghostty) or OSC 777 (urxvt, foot, VTE terminals), wrapped in tmux's DCS pass-through
inside tmux (tmux 3.3+ needs `set -g allow-passthrough on`), so a failure at 3 a.m. reaches
the desktop and not only a toast nobody sees."""

from __future__ import annotations

import re
from collections.abc import Mapping

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str, limit: int) -> str:
    """No control character may end the sequence early or start another one."""
    return _CONTROL.sub(" ", text)[:limit]


def uses_osc_777(env: Mapping[str, str]) -> bool:
    """urxvt, foot and VTE terminals (GNOME Terminal, Tilix...) speak OSC 777; the rest OSC 9."""
    term = env.get("TERM", "")
    return bool(env.get("VTE_VERSION")) or term.startswith(("rxvt", "foot"))


def notification(title: str, body: str, env: Mapping[str, str]) -> str:
    """The escape sequence that asks the terminal (through tmux when inside it) to notify."""
    title, body = _clean(title, 80), _clean(body, 400)
    if uses_osc_777(env):
        sequence = f"\x1b]777;notify;{title.replace(';', ',')};{body}\x07"
    else:
        sequence = f"\x1b]9;{title}: {body}\x07"
    if env.get("TMUX"):
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
