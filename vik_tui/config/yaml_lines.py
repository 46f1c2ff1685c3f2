"""Parse YAML while remembering the line of every key, so diagnostics can name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Pointer = tuple[str | int, ...]


@dataclass
class LineMap:
    """Maps a path inside the document (keys and list indexes) to a 1-based line."""

    lines: dict[Pointer, int] = field(default_factory=dict)

    def line_of(self, pointer: Pointer) -> int | None:
        """The line of `pointer`, or of its nearest ancestor that has one."""
        probe = tuple(pointer)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(Exception):
    """A YAML document that cannot be parsed; carries 1-based line and column."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _walk(node: yaml.Node, pointer: Pointer, out: dict[Pointer, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = pointer + (key,)
            out.setdefault(child, key_node.start_mark.line + 1)
            _walk(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = pointer + (index,)
            out.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, out)


def parse_yaml(text: str) -> tuple[Any, LineMap]:
    """Return the plain data and a line map; raise YamlSyntaxError on bad YAML."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(f"YAML syntax error: {problem}", line, column) from None
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        raise YamlSyntaxError(f"YAML error: {exc}", None, None) from None
    lines: dict[Pointer, int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return data, LineMap(lines)
