"""Keeps ACS Email sends inside the resource's quota (default 30 per minute, 100 per hour) in this process.

Limits: https://learn.microsoft.com/azure/communication-services/concepts/service-limits#email . The service's
own 429 (other instances share the quota) pauses every send until its Retry-After has passed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SendQuota:
    def __init__(self, per_minute: int, per_hour: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._clock = clock
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self.refused = 0  # sends this process held back: reported in the audit and the logs

    def reserve(self) -> float:
        """0 and the send is counted, or the seconds until a send fits (nothing is counted then)."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= 3600:
            self._sent.popleft()
        waits = [self._blocked_until - now]
        for window, limit in ((60.0, self.per_minute), (3600.0, self.per_hour)):
            inside = [t for t in self._sent if now - t < window]
            if len(inside) >= limit:
                waits.append(inside[-limit] + window - now)
        wait = max(waits)
        if wait > 0:
            self.refused += 1
            return float(math.ceil(wait))
        self._sent.append(now)
        return 0.0

    def release(self) -> None:
        """The last reserved send never reached the service (refused before it was accepted)."""
        if self._sent:
            self._sent.pop()

    def pause(self, seconds: float) -> None:
        """The service answered 429: nobody here sends before `seconds` have passed."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
