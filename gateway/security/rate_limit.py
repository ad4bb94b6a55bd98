"""Per-client rate limits, shared by the HTTP API and the MLLP listener."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """A token bucket per client in this process: ``rate`` requests (or MLLP messages) per
    second on average, bursts up to ``rate``.  Per process, so N workers let a client through
    N × rate at most — the limit protects a worker's time, and keeping it in memory costs no
    store round trip."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.rate, now))
            tokens = min(self.rate, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
