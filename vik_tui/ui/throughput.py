"""Tokens per second over the last minute, from the snapshot's running token total.

The engine counts tokens as agents report them (at the end of each turn), so the rate is the
growth of the total over a sliding window, not an instantaneous speed."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SEC = 60.0


class Throughput:
    def __init__(self, now: Callable[[], float] = time.monotonic, window: float = WINDOW_SEC) -> None:
        self._now = now
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()
        self.frozen: float | None = None  # a fixed rate (snapshot tests)

    def sample(self, total_tokens: int) -> None:
        now = self._now()
        samples = self._samples
        if samples and samples[-1][1] == total_tokens and now - samples[-1][0] < 1.0:
            return  # nothing new: keep the deque short
        samples.append((now, total_tokens))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()

    def rate(self) -> float | None:
        """Tokens per second over the window, None until two samples a second apart exist."""
        if self.frozen is not None:
            return self.frozen
        samples = self._samples
        if len(samples) < 2:
            return None
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        span = t1 - t0
        return max(0.0, (n1 - n0) / span) if span >= 1.0 else None
