"""Workflow schema, YAML loading with line numbers, and diagnostics (doctor)."""

from vik_tui.config.diagnostics import Diagnostic, Severity
from vik_tui.config.loader import LoadResult, load_workflow
from vik_tui.config.schema import Workflow

__all__ = ["Diagnostic", "LoadResult", "Severity", "Workflow", "load_workflow"]
