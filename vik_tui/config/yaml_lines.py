"""Parse YAML while remembering the line of every key, so diagnostics can name it.

The document is composed into nodes first and walked once, with limits, before any Python
data is built from it: a self-referencing alias, an alias bomb (a few lines that expand to
millions of values) or absurd nesting becomes a clear YamlSyntaxError instead of a
RecursionError or a hang. Duplicate keys (which PyYAML silently resolves to the last value)
are recorded so diagnostics can report them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

Pointer = tuple[str | int, ...]

MAX_NODES = 100_000  # values in the document after expanding aliases
MAX_DEPTH = 64  # nesting of mappings and lists; a workflow needs about 6


@dataclass
class LineMap:
    """Maps a path inside the document (keys and list indexes) to a 1-based line."""

    lines: dict[Pointer, int] = field(default_factory=dict)
    # (pointer of the repeated key, line of the repeat, line of the first occurrence)
    duplicates: list[tuple[Pointer, int, int]] = field(default_factory=list)
    # where each scalar value starts, and its style ('|' literal, '>' folded, quotes, None plain)
    scalars: dict[Pointer, tuple[int, str | None]] = field(default_factory=dict)

    def line_in_value(self, pointer: Pointer, value_line: int | None) -> int | None:
        """The document line of line `value_line` (1-based) of a text value, where it can be known."""
        start = self.scalars.get(pointer)
        if start is None or value_line is None:
            return self.line_of(pointer)
        line, style = start
        if style == "|":
            return line + value_line  # the text starts on the line after the `|`
        if value_line == 1 and style != ">":
            return line
        return self.line_of(pointer)

    def line_of(self, pointer: Pointer) -> int | None:
        """The line of `pointer`, or of its nearest ancestor that has one."""
        probe = tuple(pointer)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(Exception):
    """A YAML document that cannot be parsed; carries 1-based line and column and a stable code."""

    def __init__(self, message: str, line: int | None, column: int | None, code: str = "yaml_syntax") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.code = code


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _key_text(key_node: yaml.Node) -> str:
    """A key as text; a mapping or list used as a key (legal YAML) is named by its kind."""
    if isinstance(key_node, yaml.ScalarNode):
        return str(key_node.value)
    return "<mapping key>" if isinstance(key_node, yaml.MappingNode) else "<sequence key>"


def _walk(
    root: yaml.Node,
    out: dict[Pointer, int],
    duplicates: list[tuple[Pointer, int, int]],
    scalars: dict[Pointer, tuple[int, str | None]],
) -> None:
    """Record lines; refuse recursive aliases, too many values and too deep nesting. Iterative."""
    count = 0
    # (node, pointer, ids of the collections enclosing it)
    stack: list[tuple[yaml.Node, Pointer, frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        node, pointer, enclosing = stack.pop()
        count += 1
        if count > MAX_NODES:
            line, column = _mark(node)
            raise YamlSyntaxError(
                f"YAML document is too large: more than {MAX_NODES} values (after expanding aliases)",
                line,
                column,
                code="yaml_too_large",
            )
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if isinstance(node, yaml.ScalarNode) and pointer:
                scalars.setdefault(pointer, (node.start_mark.line + 1, node.style))
            continue
        if id(node) in enclosing:
            line, column = _mark(node)
            raise YamlSyntaxError(
                "YAML alias refers to a collection that contains it (a recursive structure)",
                line,
                column,
                code="yaml_recursive",
            )
        if len(pointer) >= MAX_DEPTH:
            line, column = _mark(node)
            raise YamlSyntaxError(
                f"YAML document is nested too deeply (more than {MAX_DEPTH} levels)",
                line,
                column,
                code="yaml_too_deep",
            )
        inner = enclosing | {id(node)}
        children: list[tuple[yaml.Node, Pointer]] = []
        if isinstance(node, yaml.MappingNode):
            first_seen: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                key = _key_text(key_node)
                child = (*pointer, key)
                key_line = key_node.start_mark.line + 1
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    ident = (key_node.tag, key_node.value)
                    if ident in first_seen:
                        duplicates.append((child, key_line, first_seen[ident]))
                    else:
                        first_seen[ident] = key_line
                out.setdefault(child, key_line)
                children.append((value_node, child))
        else:
            for index, item in enumerate(node.value):
                child = (*pointer, index)
                out.setdefault(child, item.start_mark.line + 1)
                children.append((item, child))
        for value_node, child in reversed(children):
            stack.append((value_node, child, inner))


_PLAIN: tuple[tuple[str, str], ...] = (
    ("cannot start any token", "a tab or a character YAML does not allow here: indent with spaces only"),
    (
        "mapping values are not allowed here",
        "a `key: value` where none can be: a value holding `: ` needs quotes, or this line is"
        " indented deeper than the key above it",
    ),
    (
        "could not find expected ':'",
        "a line that is not `key: value` inside a mapping (a missing colon, or a"
        " value running onto the next line: quote it or use `>-`)",
    ),
    (
        "did not find expected key",
        "the indentation does not match the lines above: the keys of one mapping start in the same column",
    ),
    (
        "expected <block end>",
        "the indentation does not match the lines above: the keys of one mapping start in the same column",
    ),
    ("did not find expected '-' indicator", "a list item indented differently from the ones above it"),
    (
        "found unexpected end of stream",
        "the file ends inside a quoted value or a bracket: a closing quote or bracket is missing",
    ),
    (
        "found unknown escape character",
        "an unknown backslash escape inside double quotes: use single quotes, or write `\\\\`",
    ),
)


def _syntax_error(exc: yaml.MarkedYAMLError, text: str) -> YamlSyntaxError:
    """PyYAML's error in plain words, with the source line and a caret under the column."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    problem = exc.problem or exc.context or "invalid YAML"
    plain = next((words for key, words in _PLAIN if key in problem), None)
    message = f"YAML syntax error: {plain} (PyYAML: {problem})" if plain else f"YAML syntax error: {problem}"
    source = text.splitlines()[line - 1] if line is not None and 0 < line <= len(text.splitlines()) else None
    if source is not None and column is not None and len(source) <= 300:
        shown = source.expandtabs(1)  # one column per tab, as PyYAML counts them
        message += f"\n    {line} | {shown}\n    {' ' * len(str(line))} | {' ' * (column - 1)}^"
    return YamlSyntaxError(message, line, column)


def _bad_scalar(root: yaml.Node) -> yaml.Node | None:
    """The first scalar that cannot be built on its own (to point at its line)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            loader = yaml.SafeLoader("")
            try:
                loader.construct_object(node)
            except Exception:
                return node
            finally:
                loader.dispose()
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):
                stack += [value_node, key_node]
        elif isinstance(node, yaml.SequenceNode):
            stack += list(reversed(node.value))
    return None


def _empty_values_as_maps(root: yaml.Node, is_mapping: Callable[[Pointer], bool]) -> None:
    """`loop:` with nothing after it is an empty map where the schema wants one, as vik (serde_yaml) reads it.

    Only a plain empty scalar counts; `null` and `~` stay null (vik refuses them for a mapping).
    """
    stack: list[tuple[yaml.Node, Pointer]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, pointer = stack.pop()
        if not isinstance(node, yaml.MappingNode) or id(node) in seen:
            continue
        seen.add(id(node))
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            child = (*pointer, str(key_node.value))
            if not is_mapping(child):
                continue
            if (
                isinstance(value_node, yaml.ScalarNode)
                and value_node.tag == "tag:yaml.org,2002:null"
                and value_node.value == ""
                and value_node.style is None
            ):
                empty = yaml.MappingNode("tag:yaml.org,2002:map", [], value_node.start_mark, value_node.end_mark)
                node.value[index] = (key_node, empty)
            else:
                stack.append((value_node, child))


def parse_yaml(text: str, is_mapping: Callable[[Pointer], bool] | None = None) -> tuple[Any, LineMap]:
    """Return the plain data and a line map; raise YamlSyntaxError on bad or hostile YAML.

    `is_mapping(pointer)` says where the schema expects a mapping: an empty value there reads as `{}`.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise YamlSyntaxError(
            f"YAML syntax error: character #x{code:04x} is not allowed in YAML", line, column
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        raise YamlSyntaxError(f"YAML error: {exc}", None, None) from None
    except RecursionError:
        raise YamlSyntaxError(
            f"YAML document is nested too deeply (more than {MAX_DEPTH} levels)",
            None,
            None,
            code="yaml_too_deep",
        ) from None
    lines: dict[Pointer, int] = {}
    duplicates: list[tuple[Pointer, int, int]] = []
    scalars: dict[Pointer, tuple[int, str | None]] = {}
    if node is None:
        return None, LineMap(lines)
    lines[()] = node.start_mark.line + 1
    _walk(node, lines, duplicates, scalars)  # first: it refuses recursive aliases the rewrite below would loop on
    if is_mapping is not None:
        _empty_values_as_maps(node, is_mapping)
    loader = yaml.SafeLoader("")
    try:
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text) from None
    except yaml.YAMLError as exc:  # pragma: no cover
        raise YamlSyntaxError(f"YAML error: {exc}", None, None) from None
    except (ValueError, OverflowError, TypeError) as exc:
        # e.g. a timestamp like 2024-13-45, which PyYAML's resolver accepts but cannot build
        line, column = _mark(_bad_scalar(node) or node)
        raise YamlSyntaxError(f"YAML value cannot be read: {exc}", line, column) from None
    finally:
        loader.dispose()
    return data, LineMap(lines, duplicates, scalars)
