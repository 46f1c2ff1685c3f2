"""Where an issue's processes run: this machine (`local`) or an SSH worker host (`remote`,
`hosts`, `ssh`; `coordination` keeps the hosts in step with the engine), and what a human does
in a workspace (`workspace_tools`, `terminals`).

May import `processes`, `service` (paths, atomic writes) and the contract at `engine/` top;
never the Supervisor.
"""
