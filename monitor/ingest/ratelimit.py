"""Per-bed token buckets: one flooding device cannot take the ward's capacity.

A bed may send `rate` messages per second on average and `burst` at once (a gateway
flushing its buffer). Past that, its messages are rejected with a reason, without being
decoded: rejecting is cheap, so the daemon keeps up with the flood and every other bed's
messages flow. Clock passed in; buckets of silent beds are forgotten.
"""

from __future__ import annotations


class RateLimiter:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, list[float]] = {}  # key -> [tokens, last time]

    def allow(self, key: str, now: float) -> bool:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + max(0.0, now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled (their beds were quiet): bounded memory."""
        full = [
            k
            for k, (tokens, last) in self.buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for k in full:
            del self.buckets[k]
