"""The import-linter contracts in pyproject.toml hold, and they catch a layering break.

`lint-imports` runs as a real subprocess on the real package; the second test runs it on a
copy of the package with one forbidden import added, to show the contracts are not vacuous.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter is not installed")

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip(f"no lint-imports script beside {sys.executable}")
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_contracts_hold_on_the_package() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(REPO / "pyproject.toml", "rb") as handle:
        contracts = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("engine/clock.py", "import textual", "engine, config and agents never import Textual or Rich"),
        ("config/schema.py", "import vik_tui.engine.processes.proc", "config imports neither the engine nor the UI"),
        ("engine/processes/proc.py", "import vik_tui.ui.glyphs", "the engine never imports the UI"),
        (
            "agents/args.py",
            "import vik_tui.engine.clock",
            "layers: cli, then ui | demo | api | web, then engine, agents, config",
        ),
        (
            "ui/text.py",
            "import vik_tui.api.wire",
            "the UI and the engine never import the API",
        ),
        ("web/server.py", "import textual.app", "the web server never imports the UI or Textual"),
        ("cli/run.py", "import vik_tui.cli.tui", "the headless commands never import the UI or Textual"),
        ("cli/lifecycle.py", "import textual.app", "the headless commands never import the UI or Textual"),
        (
            "web/tabs.py",
            "import vik_tui.api.wire",
            "layers: cli, then ui | demo | api | web, then engine, agents, config",
        ),
        (
            "engine/stages/hooks.py",
            "import vik_tui.engine.supervisor",
            "the engine's rooms never import the Supervisor that decides",
        ),
        (
            "engine/views.py",
            "import vik_tui.engine.supervisor",
            "the engine's rooms never import the Supervisor that decides",
        ),
        (
            "ui/screens/main.py",
            "import vik_tui.engine.places.terminals",
            "the UI reaches the engine only through the contract and ui.engine_api",
        ),
        (
            "engine/processes/proc.py",
            "import vik_tui.engine.service.paths",
            "processes are the floor of the engine: they import none of its rooms",
        ),
        (
            "ui/widgets/tab_row.py",
            "import vik_tui.ui.app",
            "ui layers: app, main screen, other screens, widgets, app_api",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "vik_tui", tmp_path / "vik_tui", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "vik_tui" / module, "a", encoding="utf-8") as handle:
        handle.write(f"\n{line}  # noqa: E402, F401\n")
    proc = lint_imports(tmp_path, {"PYTHONPATH": str(tmp_path)})  # the copy shadows the installed package
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{broken} BROKEN" in proc.stdout
    assert f"vik_tui.{module.removesuffix('.py').replace('/', '.')} -> " in proc.stdout
