"""When a name from outside (an issue id, a stage name) may become one path segment.

Issue ids name workspace and session directories and stage names name session files, so both
must stay a single, harmless segment. The rule lives here, in config, because the workflow
checks (stage names) and the engine (issue ids, paths) both apply it, and config may not
import the engine.
"""

from __future__ import annotations

import re

MAX_ID_BYTES = 200
# one C-speed scan each (every pulled record is checked: 10,000 ids per poll of a big tracker)
_CONTROL = re.compile("[\x00-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def unsafe_id_reason(issue_id: str) -> str | None:
    """Why `issue_id` is not a safe path segment, or None when it is."""
    if not issue_id:
        return "empty id"
    if issue_id in (".", ".."):
        return f"id `{issue_id}` is a relative path segment"
    if issue_id.startswith("."):
        return "id starts with `.`"
    if "/" in issue_id or "\\" in issue_id:
        return "id contains a path separator"
    if "\x00" in issue_id:
        return "id contains a NUL byte"
    if _CONTROL.search(issue_id):
        return "id contains a control character"
    if _SURROGATE.search(issue_id):
        return "id is not valid Unicode text (it contains a lone surrogate)"
    if len(issue_id.encode("utf-8")) > MAX_ID_BYTES:
        return f"id is longer than {MAX_ID_BYTES} bytes"
    return None
