"""Per-client token buckets (in process: each gunicorn worker keeps its own, so the limit is per worker).

Rule: `take(client)` answers 0 when the request may go on, else the seconds until a token is back;
memory is bounded (idle full buckets are forgotten).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# Past this many clients, buckets that have refilled completely are dropped (they hold no state).
MAX_CLIENTS = 10_000


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, time of last update)
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """0 when allowed (one token taken); else the whole seconds to wait (Retry-After)."""
        with self._lock:
            now = self.clock()
            tokens, updated = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                self._forget_idle(now)
                return 0
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) <= MAX_CLIENTS:
            return
        full_after = self.burst / self.rate
        self._buckets = {c: (t, u) for c, (t, u) in self._buckets.items() if now - u < full_after}
