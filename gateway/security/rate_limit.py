"""Per-client rate limits, shared by the HTTP API and the MLLP listener."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """A token bucket per client in this process: ``rate`` requests (or MLLP messages) per
    second on average, bursts up to ``rate``.  Per process, so N workers let a client through
    N × rate at most — the limit protects a worker's time, and keeping it in memory costs no
    store round trip."""

    #: buckets kept before full ones are forgotten (a full bucket is as good as none)
    SWEEP_AT = 1024

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        # MLLP keys its buckets by address, and any host may connect: without forgetting,
        # every address ever seen would stay for the life of the process
        self._sweep_at = self.SWEEP_AT

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(client, now)
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    def _tokens(self, client: str, now: float) -> float:
        tokens, then = self._buckets.get(client, (self.rate, now))
        return min(self.rate, tokens + (now - then) * self.rate)

    def _sweep(self, now: float) -> None:
        """Forget the buckets that have filled up again; sweep next when the rest has
        doubled, so a crowd of busy clients costs a sweep now and then, not one per call."""
        self._buckets = {
            client: bucket for client, bucket in self._buckets.items() if self._tokens(client, now) < self.rate
        }
        self._sweep_at = max(self.SWEEP_AT, 2 * len(self._buckets))

    def __len__(self) -> int:
        """The clients whose buckets are remembered."""
        return len(self._buckets)
