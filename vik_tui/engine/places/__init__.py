"""Where an issue's processes run: this machine (`local`) or an SSH worker host (`remote`,
`hosts`, `ssh`), and what a human does in a workspace (`workspace_tools`, `terminals`).

May import `processes`, `service.paths` and the contract at `engine/` top; never the Supervisor.
"""
