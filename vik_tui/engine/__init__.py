"""The engine: intake, dispatch, hooks, templates, sessions. It never imports Textual."""
