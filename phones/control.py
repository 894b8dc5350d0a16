"""A concurrency controller that converges to Graph's write quota: AIMD over the number of $batch requests in
flight. Each batch that comes back without a throttled item adds 1/window (one more batch per round trip);
a throttled batch halves the window (once per congestion episode) and closes a gate for the Retry-After it
carried, so every worker waits instead of hammering a full bucket. No fixed sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Aimd:
    def __init__(
        self, maximum: int, *, initial: float = 2.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ):
        self.maximum = maximum
        self.window = min(float(initial), float(maximum))
        self.inflight = 0
        self.epoch = 0  # bumps on every halving: one halving per congestion episode
        self.halvings = 0
        self.peak = self.window
        self._sleep = sleep
        self._cond = asyncio.Condition()
        self._gate = asyncio.Event()
        self._gate.set()

    async def acquire(self) -> int:
        """Wait for room; the epoch to hand back to release()."""
        while True:
            await self._gate.wait()
            async with self._cond:
                while self.inflight >= max(1, int(self.window)):
                    await self._cond.wait()
                if not self._gate.is_set():
                    continue
                self.inflight += 1
                return self.epoch

    async def release(self, epoch: int, throttled: bool = False, retry_after: float = 0.0) -> None:
        pause = 0.0
        async with self._cond:
            self.inflight -= 1
            if throttled:
                if epoch == self.epoch:
                    # The first throttled answer of an episode; batches sent before it that come back throttled
                    # too (an older epoch) neither halve the window again nor pause again.
                    self.window = max(1.0, self.window / 2)
                    self.epoch += 1
                    self.halvings += 1
                    if self._gate.is_set() and retry_after > 0:
                        self._gate.clear()
                        pause = retry_after
            else:
                self.window = min(float(self.maximum), self.window + 1.0 / self.window)
                self.peak = max(self.peak, self.window)
            self._cond.notify_all()
        if pause:
            try:
                await self._sleep(pause)
            finally:
                self._gate.set()
