"""Running one stage attempt (`attempt`: prepare, hooks, the agent's session, outcomes) and its
session: spawn the agent, stream and record its events (`session`), the facts it keeps and the
causes of a stop (`facts`), render its templates, decide its outcome, and read a session file
back; a run's scheduling state (`runs`).

May import `processes`, `places`, `service`, the contract and the rooms at `engine/` top
(`bus`, `intake`), `agents` and `config`; never the Supervisor.
"""
