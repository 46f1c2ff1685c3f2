"""The supervisor's own lifecycle: one supervisor per workflow (lock, `state.json`, held for one
`run()` by `lifetime`), the detached daemon, crash recovery, append-only journalled files, daily
logs, the on-disk layout, and the signals that stop it.

May import `processes`, `stages` (recovery reads sessions back) and the contract at `engine/`
top; never the Supervisor.
"""
