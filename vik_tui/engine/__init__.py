"""The engine: everything that decides and runs. It never imports Textual (import-linter says so).

At this level lives the contract that every face reads (`view`: the typed snapshot views,
`engine_events`: the events, `clock`) and the one object that decides (`supervisor`), with the
tracker intake it decides on (`intake`) and the headless printer (`headless`). The rest lives in
sub-packages, each with one job:

- `stages`: running one stage session (process, hooks, templates, outcome, history replay);
- `places`: where an issue's processes run (this machine or an SSH worker host);
- `processes`: process groups and the marks that find every descendant;
- `service`: the supervisor's own lifecycle (lock and state file, daemon, crash recovery,
  journalled files, daily logs, on-disk layout, stop signals).

Sub-packages never import the Supervisor; it imports them.
"""
