"""The Textual UI: renders engine events and sends commands. Never spawns agents or reads files."""
