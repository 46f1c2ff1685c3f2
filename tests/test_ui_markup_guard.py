"""Issue #18, item 3 stays fixed: outside text reaches the UI's markup only through
`ui/text.markup_text`, so no module of `vik_tui/ui` may bring back the ways that failed.

- Textual's or Rich's `escape` (missed `[$error]`, `[ b]`, `[A=1]`, a trailing backslash and a
  cut `[@click=…`, and is the wrong escape for the other parser);
- `from_markup` (Rich `Text` or Textual `Content`) on a string built here;
- a toast asked for as markup (`notify(..., markup=True)`): toasts are text (`VikApp.notify`).

A cheap AST scan of the source, checked against a snippet that breaks each rule so it cannot
pass vacuously.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parent.parent / "vik_tui" / "ui"
MARKUP_MODULES = {"textual.markup", "rich.markup"}


def offences(source: str, name: str = "<snippet>") -> list[str]:
    """Each use of a forbidden markup route in `source`, as `name:line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.ImportFrom) and node.module in MARKUP_MODULES:
            found.append(f"{name}:{node.lineno}: imports from {node.module} (use text.markup_text)")
        elif isinstance(node, ast.Import):
            found += [
                f"{name}:{node.lineno}: imports {alias.name} (use text.markup_text)"
                for alias in node.names
                if alias.name in MARKUP_MODULES
            ]
        elif isinstance(node, ast.Attribute) and node.attr == "from_markup":
            found.append(f"{name}:{node.lineno}: from_markup parses what it is given (use text.markup_text)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            for keyword in node.keywords:
                markup_on = isinstance(keyword.value, ast.Constant) and keyword.value.value is True
                if called == "notify" and keyword.arg == "markup" and markup_on:
                    found.append(f"{name}:{node.lineno}: a toast as markup (toasts are text)")
    return found


def test_no_ui_module_escapes_or_parses_outside_text_its_own_way() -> None:
    sources = sorted(UI.rglob("*.py"))
    assert len(sources) > 20  # the whole UI package, not an empty glob
    found = [hit for path in sources for hit in offences(path.read_text(), str(path.relative_to(UI.parent)))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "from textual.markup import escape",
        "from rich.markup import escape as esc",
        "import rich.markup",
        "x = Content.from_markup(f'[b]{title}[/]')",
        "x = Text.from_markup(title)",
        "self.notify(reason, markup=True)",
    ],
)
def test_the_guard_catches_each_route(snippet: str) -> None:
    assert offences(snippet), snippet


def test_the_guard_lets_the_one_route_pass() -> None:
    assert not offences("from vik_tui.ui.text import markup_text\nStatic(f'[b]{markup_text(title)}[/]')")
    assert not offences("self.notify(reason, title=where)\nsuper().notify(m, markup=False)")
