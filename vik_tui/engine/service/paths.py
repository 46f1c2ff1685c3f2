"""Every on-disk location vik-tui uses, laid out exactly as vik lays it out.

home = workspace.root | <workflow dir>/.vik (no `workspace`) | $VIK_HOME | ~/.vik (`workspace: {}`)
root = home/workflows/<absolute workflow path, '/' replaced by '-'>/
  issues/<id>/                       one workspace per issue
  sessions/<id>/<stage>-<uuid7>.jsonl
  logs/vik.log.YYYY-MM-DD, logs/vik-error.log.YYYY-MM-DD
  service/state.json, service/lock
  service/api.sock, service/api.token   (ours: the HTTP API's socket and its TCP bearer token)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from vik_tui.config.ids import MAX_ID_BYTES as MAX_ID_BYTES  # re-exported: the id rule is part of the layout
from vik_tui.config.ids import unsafe_id_reason as unsafe_id_reason
from vik_tui.config.schema import Workflow

UUID_LEN = 36  # canonical text form of the uuid7 in session file names
API_SOCKET = "api.sock"  # in service/: the HTTP API's Unix socket
API_TOKEN = "api.token"  # in service/: the HTTP API's bearer token for TCP


class UnsafeIssueId(ValueError):
    """An issue id that cannot be used as a single directory name."""


def expand_tilde(value: str) -> str:
    """`~` and `~/...` become the home directory, as vik expands them (`~user` and `$VAR` are left alone)."""
    if value == "~" or value.startswith("~/"):
        return str(Path.home()) + value[1:]
    return value


def resolve_from(base: Path, value: str) -> Path:
    """vik's rule: expand `~`; an absolute path is kept as written; a relative one is joined to `base`
    (the workflow directory) with `.` dropped and each `..` removing one component, on paper only."""
    path = Path(expand_tilde(value))
    if path.is_absolute():
        return path
    out = Path(base)
    for part in path.parts:
        if part == "..":
            out = out.parent
        elif part != ".":
            out = out / part
    return out


def workspace_home(workflow: Workflow, workflow_path: Path) -> Path:
    """vik's rules for where the workspace home is."""
    workflow_dir = workflow_path.parent
    if workflow.workspace is None:
        return workflow_dir / ".vik"
    if workflow.workspace.root is None:
        env_home = os.environ.get("VIK_HOME")
        # a relative VIK_HOME resolves from the workflow directory, as vik resolves it
        return resolve_from(workflow_dir, env_home) if env_home else Path.home() / ".vik"
    return resolve_from(workflow_dir, workflow.workspace.root)


def encode_workflow_path(workflow_path: Path) -> str:
    """`/home/a/wf.yml` -> `-home-a-wf.yml`, as vik names a workflow's directory."""
    return str(workflow_path).replace("/", "-")


@dataclass(frozen=True)
class Layout:
    """All paths of one workflow. Build with `Layout.for_workflow`."""

    workflow_path: Path
    home: Path
    root: Path

    @classmethod
    def for_workflow(cls, workflow: Workflow, workflow_path: Path) -> Layout:
        workflow_path = Path(os.path.abspath(workflow_path))
        home = workspace_home(workflow, workflow_path)
        root = home / "workflows" / encode_workflow_path(workflow_path)
        return cls(workflow_path=workflow_path, home=home, root=root)

    @property
    def workflow_dir(self) -> Path:
        return self.workflow_path.parent

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def service_dir(self) -> Path:
        return self.root / "service"

    @property
    def state_file(self) -> Path:
        return self.service_dir / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.service_dir / "lock"

    @property
    def api_socket(self) -> Path:
        """The HTTP API's Unix socket (0600), served by every supervisor of the workflow."""
        return self.service_dir / API_SOCKET

    @property
    def api_token_file(self) -> Path:
        """The bearer token the HTTP API asks for on TCP (0600), made at the first start."""
        return self.service_dir / API_TOKEN

    def issue_workdir(self, issue_id: str) -> Path:
        """The workspace of one issue; raises UnsafeIssueId for ids that could escape."""
        reason = unsafe_id_reason(issue_id)
        if reason:
            raise UnsafeIssueId(reason)
        path = self.issues_dir / issue_id
        self._ensure_inside(path, self.issues_dir)
        return path

    def session_dir(self, issue_id: str) -> Path:
        reason = unsafe_id_reason(issue_id)
        if reason:
            raise UnsafeIssueId(reason)
        path = self.sessions_dir / issue_id
        self._ensure_inside(path, self.sessions_dir)
        return path

    def session_file(self, issue_id: str, stage: str, session_uuid: str) -> Path:
        """`sessions/<id>/<stage>-<uuid>.jsonl`; the stage name must be a safe file-name part too."""
        directory = self.session_dir(issue_id)
        for label, part in (("stage name", stage), ("session id", session_uuid)):
            reason = unsafe_id_reason(part)
            if reason:
                raise UnsafeIssueId(f"{label} {part!r} is not a safe file name: {reason.replace('id', label, 1)}")
        path = directory / f"{stage}-{session_uuid}.jsonl"
        self._ensure_inside(path, self.sessions_dir)
        return path

    @staticmethod
    def parse_session_name(path: Path) -> tuple[str, str] | None:
        """(stage, session uuid) of a `<stage>-<uuid7>.jsonl` file, the inverse of `session_file`."""
        stem = path.stem
        if path.suffix != ".jsonl" or len(stem) <= UUID_LEN + 1 or stem[-UUID_LEN - 1] != "-":
            return None
        return stem[: -UUID_LEN - 1], stem[-UUID_LEN:]

    @staticmethod
    def _ensure_inside(path: Path, parent: Path) -> None:
        """Refuse a path whose real location (symlinks followed) leaves `parent`."""
        if _plainly_below(str(path), str(parent)):
            return
        real_parent = Path(os.path.realpath(parent))
        real = Path(os.path.realpath(path))
        if real != real_parent and real_parent not in real.parents:
            raise UnsafeIssueId(f"workspace would resolve outside the root ({real})")


def _plainly_below(path: str, parent: str) -> bool:
    """True when `path` is `parent` or names below it with no symlink, `.` or `..` among them
    (one `lstat` per name below `parent`; a name that does not exist ends the walk): its real
    location is then `parent`'s joined with the same names, inside it whatever `parent` itself
    resolves to. False: ask `realpath` (pure Python before 3.13: an `lstat` of every component
    from `/`, ~60 us, twice per check and five checks per stage attempt)."""
    if path == parent:
        return True
    if not path.startswith(parent + "/"):
        return False
    current = parent
    for name in path[len(parent) + 1 :].split("/"):
        if name in ("", ".", ".."):
            return False
        current = f"{current}/{name}"
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return True  # nothing below a missing name exists to be a symlink
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return True
