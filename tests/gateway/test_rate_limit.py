"""The per-client token buckets of the HTTP API and the MLLP listener."""

from __future__ import annotations

import time

from gateway.security.rate_limit import RateLimiter


def test_a_client_beyond_its_rate_is_told_how_long_to_wait() -> None:
    limiter = RateLimiter(2)
    waits = [limiter.take("his-zz1") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and 0 < waits[2] <= 0.5


def test_one_clients_burst_does_not_slow_another() -> None:
    limiter = RateLimiter(1)
    limiter.take("his-zz1")
    assert limiter.take("his-zz2") == 0.0


def test_buckets_that_filled_up_again_are_forgotten() -> None:
    """MLLP keys buckets by address: a scan from many addresses must not stay in memory."""
    limiter = RateLimiter(1000)
    for index in range(RateLimiter.SWEEP_AT):
        limiter.take(f"10.0.{index // 256}.{index % 256}")
    time.sleep(0.01)  # each bucket refills within a millisecond
    limiter.take("10.9.9.9")
    assert len(limiter) == 1
