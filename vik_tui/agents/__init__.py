"""Provider-neutral agent events and one adapter per runtime (pure functions, no processes)."""
