"""Retries one delivery with exponential backoff, honouring Retry-After, inside a time budget."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .errors import DeliveryError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_seconds: float = 1.0
    budget_seconds: float = 30.0  # no wait that would end after this (from the first try) is started


@dataclass
class Outcome:
    ok: bool
    attempts: int
    error: DeliveryError | None = None
    throttled: int = 0  # how many tries were answered "throttled"


async def with_retry(
    send: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Run `send` until it succeeds, fails for good, runs out of attempts, or the next wait breaks the budget."""
    started = time.monotonic()
    throttled = 0
    for attempt in range(1, policy.attempts + 1):
        try:
            await send()
            return Outcome(True, attempt, throttled=throttled)
        except DeliveryError as exc:
            throttled += exc.code == "throttled"
            if not exc.retryable or attempt == policy.attempts:
                return Outcome(False, attempt, exc, throttled)
            backoff = policy.base_seconds * 2 ** (attempt - 1) * (0.8 + 0.4 * random.random())  # noqa: S311 (jitter)
            wait = max(backoff, exc.retry_after or 0.0)
            if time.monotonic() - started + wait > policy.budget_seconds:
                return Outcome(False, attempt, exc, throttled)
            await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
