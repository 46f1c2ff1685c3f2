"""The engine: everything that decides and runs. It never imports Textual (import-linter says so).

At this level lives the contract that every face reads (`view`: the typed snapshot views and
plans, `engine_events`: the events, `clock`) and the one object that decides (`supervisor`), with
the tracker intake it decides on (`intake`), the headless printer (`headless`) and the small
rooms that work for it: `bus` (subscribe and emit), `listing` (the last pull and intake's
status), `reconcile` (a pull applied to the runs), `gate` (what keeps a stage from starting),
`holds` (budget and rate limits), `retrying` (retry schedule, kept on disk), `pacing` (the
loop's rhythm and ending), `views` (building the `EngineView`), `history` (session files of
earlier runs adopted), `reload` (the configuration read and watched) and `workspaces`.
The rest lives in sub-packages, each with one job:

- `stages`: running one stage attempt and its session (process, hooks, templates, outcome,
  history replay);
- `places`: where an issue's processes run (this machine or an SSH worker host, and keeping the
  hosts in step);
- `processes`: process groups and the marks that find every descendant;
- `service`: the supervisor's own lifecycle (lock and state file, daemon, crash recovery,
  journalled files, atomic writes, daily logs, on-disk layout, stop signals).

Sub-packages and the rooms never import the Supervisor; it imports them.
"""
