"""Colour for plain `Log` lines: the Log stores strings, a highlighter styles the visible ones.

Styling happens only for lines on screen (Log renders lazily), so this stays cheap at any log
size. Colours come from the current Textual theme, so light and dark themes both read well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text

from vik_tui.engine.view import SessionState
from vik_tui.ui.glyphs import Glyphs

_STAMP = re.compile(r"^(\d\d:\d\d:\d\d|\s{8})  ")
_OUTCOME_STYLE: dict[str, str] = {
    SessionState.COMPLETED: "ok",
    SessionState.FAILED: "bad",
    SessionState.CANCELLED: "warn",
}


def theme_color(variables: Mapping[str, str], name: str, fallback: str) -> str:
    """A theme variable's hex colour, or `fallback` when the theme has none (or not as hex)."""
    value = variables.get(name) or fallback
    return value if value.startswith("#") else fallback


def theme_styles(variables: Mapping[str, str]) -> dict[str, Style]:
    """Rich styles from Textual theme variables (`app.theme_variables`)."""

    def color(name: str, fallback: str) -> str:
        return theme_color(variables, name, fallback)

    return {
        "stamp": Style(dim=True),
        "muted": Style(dim=True, italic=True),
        "tool": Style(color=color("primary", "blue"), bold=True),
        "ok": Style(color=color("success", "green")),
        "bad": Style(color=color("error", "red"), bold=True),
        "warn": Style(color=color("warning", "yellow")),
        "outcome": Style(bold=True),
        "output": Style(dim=True),
        "add": Style(color=color("success", "green")),
        "del": Style(color=color("error", "red")),
        "hunk": Style(color=color("primary", "blue")),
        "meta": Style(bold=True),
    }


class SessionHighlighter(Highlighter):
    """Styles the line kinds `records.format_records` produces, by their fixed prefixes."""

    def __init__(self, styles: dict[str, Style], glyphs: Glyphs) -> None:
        self.styles = styles
        self.tool_marks = (glyphs.tool + " ",)
        self.ok_marks = (glyphs.ok + " ",)
        self.bad_marks = (glyphs.bad + " ",)
        self.rule = glyphs.rule + " "

    def highlight(self, text: Text) -> None:
        plain = text.plain
        match = _STAMP.match(plain)
        if match is None:
            return
        start = match.end()
        text.stylize(self.styles["stamp"], 0, 8)
        body = plain[start:]
        style = None
        if body.startswith("~ ") or body.startswith("> "):
            style = "muted"
        elif body.startswith("[error]"):
            style = "bad"
        elif body.startswith("[warn]"):
            style = "warn"
        elif body.startswith(self.rule):
            state = body[len(self.rule) + 1 :].split(" ", 1)[0]
            text.stylize(self.styles["outcome"], start, len(plain))
            style = _OUTCOME_STYLE.get(state)
        elif body.startswith("│"):
            style = "output"
        elif body.startswith(self.tool_marks):
            text.stylize(self.styles["tool"], start, start + 1)
            return
        elif body.startswith(self.ok_marks):
            text.stylize(self.styles["ok"], start, len(plain))
            return
        elif body.startswith(self.bad_marks):
            text.stylize(self.styles["bad"], start, len(plain))
            return
        if style is not None:
            text.stylize(self.styles[style], start, len(plain))


class DiffHighlighter(Highlighter):
    """+/- lines, hunk headers and the `$ git …` command lines of `git_diff` output."""

    def __init__(self, styles: dict[str, Style]) -> None:
        self.styles = styles

    def highlight(self, text: Text) -> None:
        plain = text.plain
        if plain.startswith(("+++", "---", "diff ", "index ")) or plain.startswith("$ "):
            text.stylize(self.styles["meta"])
        elif plain.startswith("+"):
            text.stylize(self.styles["add"])
        elif plain.startswith("-"):
            text.stylize(self.styles["del"])
        elif plain.startswith("@@"):
            text.stylize(self.styles["hunk"])
