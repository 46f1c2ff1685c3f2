"""Workspace layout, exactly where vik puts things, and refusal of unsafe ids and escapes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, base_workflow

from vik_tui.config import load_workflow
from vik_tui.config.schema import Workflow
from vik_tui.engine.service.paths import (
    MAX_ID_BYTES,
    Layout,
    UnsafeIssueId,
    encode_workflow_path,
    resolve_from,
    unsafe_id_reason,
    workspace_home,
)


def layout_for(project: Project, **overrides: Any) -> Layout:
    """Write the workflow to disk, load it like the supervisor does, and build its layout."""
    data = base_workflow(project)
    for key, value in overrides.items():
        if value is _ABSENT:
            data.pop(key, None)
        else:
            data[key] = value
    project.write(data)
    result = load_workflow(project.workflow_path)
    assert result.ok, result.diagnostics
    return Layout.for_workflow(result.workflow, result.path)


_ABSENT = object()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake $HOME, and no VIK_HOME, so nothing touches the real ~/.vik."""
    fake = tmp_path / "home"
    fake.mkdir()
    monkeypatch.setenv("HOME", str(fake))
    monkeypatch.delenv("VIK_HOME", raising=False)
    return fake


# -- home ---------------------------------------------------------------------------------------


def test_no_workspace_section_means_dot_vik_beside_the_workflow(project: Project, home: Path) -> None:
    layout = layout_for(project, workspace=_ABSENT)
    assert layout.home == project.root / ".vik"


def test_relative_root_resolves_from_the_workflow_dir(
    project: Project, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # somewhere else
    layout = layout_for(project, workspace={"root": "ws/here"})
    assert layout.home == project.root / "ws" / "here"


def test_absolute_root_is_used_as_is(project: Project, home: Path, tmp_path: Path) -> None:
    layout = layout_for(project, workspace={"root": str(tmp_path / "abs")})
    assert layout.home == tmp_path / "abs"


def test_tilde_root_expands(project: Project, home: Path) -> None:
    layout = layout_for(project, workspace={"root": "~/work/vik"})
    assert layout.home == home / "work" / "vik"


@pytest.mark.parametrize("workspace", [{}, {"root": None}])
def test_empty_workspace_uses_vik_home(
    project: Project, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workspace: dict[str, Any]
) -> None:
    assert layout_for(project, workspace=workspace).home == home / ".vik"
    monkeypatch.setenv("VIK_HOME", str(tmp_path / "vikhome"))
    assert layout_for(project, workspace=workspace).home == tmp_path / "vikhome"
    monkeypatch.setenv("VIK_HOME", "~/vh")
    assert layout_for(project, workspace=workspace).home == home / "vh"


def test_relative_vik_home_resolves_from_the_workflow_dir(
    project: Project, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As vik: a relative VIK_HOME joins the workflow directory, not the shell's cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIK_HOME", "rel/vh")
    layout = layout_for(project, workspace={})
    assert layout.home == project.root / "rel" / "vh" and layout.home.is_absolute()


def test_dot_dot_in_a_relative_root_is_collapsed(project: Project, home: Path) -> None:
    """vik normalises a relative root on paper: `..` pops one component, `.` is dropped."""
    layout = layout_for(project, workspace={"root": "../ws/./x/../y"})
    assert layout.home == project.root.parent / "ws" / "y"
    assert ".." not in str(layout.root)
    assert layout_for(project, workspace={"root": "/abs/../kept"}).home == Path("/abs/../kept")  # as written


def test_vik_home_is_ignored_when_workspace_is_absent_or_set(
    project: Project, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIK_HOME", str(tmp_path / "vikhome"))
    assert layout_for(project, workspace=_ABSENT).home == project.root / ".vik"
    assert layout_for(project, workspace={"root": "r"}).home == project.root / "r"


def test_workspace_home_function_directly(tmp_path: Path, home: Path) -> None:
    wf = Workflow.model_validate(
        {
            "agents": {"a": {"runtime": "codex", "model": "m"}},
            "issues": {"pull": {"command": "x"}},
            "issue": {"stages": {"p": {"when": {"state": "t"}, "agent": "a", "prompt": "x"}}},
        }
    )
    assert workspace_home(wf, tmp_path / "wf.yml") == tmp_path / ".vik"


# -- root and layout ----------------------------------------------------------------------------


def test_root_encodes_the_absolute_workflow_path(project: Project, home: Path) -> None:
    layout = layout_for(project, workspace={"root": "ws"})
    encoded = str(project.workflow_path).replace("/", "-")
    assert encoded.startswith("-") and "/" not in encoded
    assert layout.root == project.root / "ws" / "workflows" / encoded
    assert encode_workflow_path(Path("/home/a/wf.yml")) == "-home-a-wf.yml"


def test_relative_workflow_path_is_made_absolute(project: Project, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write(base_workflow(project))
    wf = load_workflow(project.workflow_path).workflow
    monkeypatch.chdir(project.root)
    layout = Layout.for_workflow(wf, Path("workflow.yml"))
    assert layout.workflow_path == project.workflow_path
    assert layout.root.name == str(project.workflow_path).replace("/", "-")


def test_every_location(project: Project, home: Path) -> None:
    layout = layout_for(project)
    root = layout.root
    assert layout.workflow_dir == project.root
    assert layout.issues_dir == root / "issues"
    assert layout.sessions_dir == root / "sessions"
    assert layout.logs_dir == root / "logs"
    assert layout.service_dir == root / "service"
    assert layout.state_file == root / "service" / "state.json"
    assert layout.lock_file == root / "service" / "lock"
    assert layout.issue_workdir("ENG-12") == root / "issues" / "ENG-12"
    assert layout.session_dir("ENG-12") == root / "sessions" / "ENG-12"
    uuid = "0190c6e0-7a4b-7cc1-8d2e-1234567890ab"
    assert layout.session_file("ENG-12", "plan", uuid) == root / "sessions" / "ENG-12" / f"plan-{uuid}.jsonl"


def test_resolve_from(tmp_path: Path, home: Path) -> None:
    assert resolve_from(tmp_path, "a/b") == tmp_path / "a" / "b"
    assert resolve_from(tmp_path, "/abs") == Path("/abs")
    assert resolve_from(tmp_path, "~/x") == home / "x"
    assert resolve_from(tmp_path, "~") == home
    assert resolve_from(tmp_path / "a", "../b/./c") == tmp_path / "b" / "c"
    assert resolve_from(tmp_path, "~nobody/x") == tmp_path / "~nobody" / "x"  # vik expands only `~` and `~/`


# -- unsafe ids ---------------------------------------------------------------------------------

UNSAFE: dict[str, tuple[str, str]] = {
    "empty": ("", "empty id"),
    "dot": (".", "relative path segment"),
    "dotdot": ("..", "relative path segment"),
    "hidden": (".git", "starts with `.`"),
    "dot-slash": ("./x", "starts with `.`"),
    "slash": ("a/b", "path separator"),
    "leading slash": ("/etc", "path separator"),
    "traversal": ("x/../../etc", "path separator"),
    "backslash": ("a\\b", "path separator"),
    "nul": ("a\x00b", "NUL"),
    "newline": ("a\nb", "control character"),
    "escape": ("a\x1b[31m", "control character"),
    "too long": ("x" * (MAX_ID_BYTES + 1), f"longer than {MAX_ID_BYTES} bytes"),
    "too long multibyte": ("é" * 101, f"longer than {MAX_ID_BYTES} bytes"),
    "lone surrogate": ("a\ud800", "surrogate"),
}


@pytest.mark.parametrize("name", list(UNSAFE))
def test_unsafe_ids_are_refused_with_a_reason(project: Project, home: Path, name: str) -> None:
    issue_id, reason = UNSAFE[name]
    assert reason in (unsafe_id_reason(issue_id) or "")
    layout = layout_for(project)
    for method in (layout.issue_workdir, layout.session_dir):
        with pytest.raises(UnsafeIssueId, match=reason.replace("[", r"\[").replace(".", r"\.")):
            method(issue_id)
    with pytest.raises(UnsafeIssueId):
        layout.session_file(issue_id, "plan", "u")


@pytest.mark.parametrize(
    "issue_id", ["ENG-12", "42", "a.b", "x" * MAX_ID_BYTES, "é" * 100, "with space", "ü-ñ", "a..b", "~", "-rf"]
)
def test_safe_ids_are_accepted(project: Project, home: Path, issue_id: str) -> None:
    assert unsafe_id_reason(issue_id) is None
    layout = layout_for(project)
    path = layout.issue_workdir(issue_id)
    assert path.parent == layout.issues_dir and path.name == issue_id
    path.mkdir(parents=True)  # it really is one directory
    assert path.is_dir()


@pytest.mark.parametrize("stage", ["", "..", ".x", "a/b", "p\x00"])
def test_unsafe_stage_names_in_session_files_are_refused(project: Project, home: Path, stage: str) -> None:
    layout = layout_for(project)
    with pytest.raises(UnsafeIssueId, match="stage name"):
        layout.session_file("ENG-1", stage, "0190c6e0")


# -- symlinks -----------------------------------------------------------------------------------


def test_issue_symlink_pointing_outside_the_root_is_refused(project: Project, home: Path, tmp_path: Path) -> None:
    layout = layout_for(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    layout.issues_dir.mkdir(parents=True)
    (layout.issues_dir / "ENG-1").symlink_to(elsewhere)
    with pytest.raises(UnsafeIssueId, match="outside the root") as info:
        layout.issue_workdir("ENG-1")
    assert str(elsewhere) in str(info.value)


def test_issue_symlink_to_tmp_is_refused(project: Project, home: Path) -> None:
    layout = layout_for(project)
    layout.issues_dir.mkdir(parents=True)
    (layout.issues_dir / "ENG-2").symlink_to("/tmp/elsewhere")  # dangling is refused too
    with pytest.raises(UnsafeIssueId, match="outside the root"):
        layout.issue_workdir("ENG-2")


def test_relative_symlink_chain_out_is_refused(project: Project, home: Path, tmp_path: Path) -> None:
    layout = layout_for(project)
    layout.issues_dir.mkdir(parents=True)
    (layout.issues_dir / "hop").symlink_to("../../..")
    (layout.issues_dir / "ENG-3").symlink_to("hop")
    with pytest.raises(UnsafeIssueId):
        layout.issue_workdir("ENG-3")


def test_session_dir_symlink_out_is_refused(project: Project, home: Path, tmp_path: Path) -> None:
    layout = layout_for(project)
    layout.sessions_dir.mkdir(parents=True)
    (layout.sessions_dir / "ENG-1").symlink_to(tmp_path)
    with pytest.raises(UnsafeIssueId, match="outside the root"):
        layout.session_dir("ENG-1")
    with pytest.raises(UnsafeIssueId):
        layout.session_file("ENG-1", "plan", "u")


def test_symlink_staying_inside_is_allowed(project: Project, home: Path) -> None:
    layout = layout_for(project)
    (layout.issues_dir / "real").mkdir(parents=True)
    (layout.issues_dir / "alias").symlink_to("real")
    assert layout.issue_workdir("alias") == layout.issues_dir / "alias"


def test_symlinked_home_is_fine(project: Project, home: Path, tmp_path: Path) -> None:
    """The root itself may live behind a symlink; only escaping *from* it is refused."""
    real = tmp_path / "real-home"
    real.mkdir()
    link = tmp_path / "link-home"
    link.symlink_to(real)
    layout = layout_for(project, workspace={"root": str(link)})
    layout.issues_dir.mkdir(parents=True)
    assert layout.issue_workdir("ENG-9") == link / "workflows" / layout.root.name / "issues" / "ENG-9"
    assert os.path.realpath(layout.issue_workdir("ENG-9")).startswith(str(real))


def test_a_plain_path_below_the_root_is_checked_without_realpath(
    project: Project, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No symlink below the root: one `lstat` per name, not `realpath` (five checks per stage
    attempt, an `lstat` of every component from `/` each); the answer is the same."""
    layout = layout_for(project)
    (layout.issues_dir / "ENG-1").mkdir(parents=True)

    def refused(_path: object, **_kwargs: object) -> str:
        raise AssertionError("realpath was asked")

    monkeypatch.setattr(os.path, "realpath", refused)
    assert layout.issue_workdir("ENG-1") == layout.issues_dir / "ENG-1"
    assert layout.session_file("ENG-2", "plan", "u").parent == layout.sessions_dir / "ENG-2"  # not made yet


def test_the_plain_check_answers_as_realpath_does(project: Project, home: Path, tmp_path: Path) -> None:
    """Every way a name below the root can resolve: the check refuses exactly the paths whose
    real location leaves the root."""
    layout = layout_for(project)
    issues = layout.issues_dir
    (issues / "real" / "deep").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (issues / "file").write_text("")
    links = {
        "in": "real",
        "in-abs": str(issues / "real"),
        "out": str(tmp_path / "out"),
        "dangling-in": "nothing-yet",
        "dangling-out": "/nonexistent-root-escape",
        "up": "..",
        "loop": "loop",
    }
    for name, target in links.items():
        (issues / name).symlink_to(target)
    (issues / "real" / "back-out").symlink_to("../../..")
    candidates = [*links, "real", "real/deep", "real/deep/x", "real/back-out", "real/back-out/y", "missing/z", "file/x"]
    for name in candidates:
        path = issues / name
        real, real_root = os.path.realpath(path), os.path.realpath(issues)
        inside = real == real_root or real.startswith(real_root + "/")
        try:
            layout._ensure_inside(path, issues)
        except UnsafeIssueId:
            assert not inside, name
        else:
            assert inside, name
