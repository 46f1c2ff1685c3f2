"""`git diff` of a workspace, as the `d` key shows it (real git, real files)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vik_tui.engine.places.workspace_tools import git_diff


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True, capture_output=True
    )


async def test_diff_shows_tracked_changes_and_new_files(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", ".")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-qm", "init")
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "new.md").write_text("brand new\n")
    text = await git_diff(tmp_path)
    assert " M a.txt" in text and "?? new.md" in text
    assert "+two" in text
    assert "+++ b/new.md" in text and "+brand new" in text


async def test_diff_before_first_commit_and_outside_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", ".")
    (repo / "x.txt").write_text("x\n")
    assert "+x" in await git_diff(repo)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert (await git_diff(plain)).startswith("(not a git repository")
    assert (await git_diff(tmp_path / "missing")).startswith("(workspace ")
