"""The built-in demo: a tracker, a simulated agent and a project writer.

`vik-tui demo` must show the whole loop (intake, stages, retries, state moves) on a machine
with no real agent CLI and no account, so everything here is self-contained:

- `tracker`: a JSON-file issue tracker (`python -m vik_tui.demo.tracker list|move`) that the
  demo workflow's pull command reads and the simulated agent writes.
- `agent`: a fake agent (`python -m vik_tui.demo.agent`) that speaks Codex's `exec --json`
  JSONL at a human pace, really runs harmless commands, edits a file, moves its issue, and
  fails once on purpose for issues labelled "flaky" so retries can be seen.
- `project`: `write_demo_project()` lays out tracker.json, prompts and workflow.yml.
"""
