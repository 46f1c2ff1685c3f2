"""Running one stage session: spawn the agent, stream and record its events, run its hooks,
render its templates, decide its outcome, and read a session file back.

May import `processes`, `service` (journal, paths), the contract at `engine/` top, `agents` and
`config`; never the Supervisor.
"""
