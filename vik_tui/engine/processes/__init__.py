"""Process groups and descendant marks: every process we start, and everything it starts, can
be found and killed. Imports nothing else of the engine."""
