"""The retry loop (backoff, Retry-After, budget) and the in-process ACS quota keeper."""

from __future__ import annotations

from notify.errors import DeliveryError, Throttled
from notify.quota import SendQuota
from notify.retry import RetryPolicy, with_retry


class Script:
    """A send that fails with the given errors in turn, then succeeds; counts its calls."""

    def __init__(self, *errors: DeliveryError):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


class Sleeps:
    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_a_retryable_failure_is_retried_after_the_services_retry_after():
    """A 429 with Retry-After 3 s is waited out (more than the 0.1 s backoff) and the next try succeeds."""
    send, sleeps = Script(Throttled("busy", 3.0)), Sleeps()
    outcome = await with_retry(send, RetryPolicy(attempts=4, base_seconds=0.1, budget_seconds=30), sleeps)
    assert (outcome.ok, outcome.attempts, outcome.throttled) == (True, 2, 1)
    assert sleeps.waits == [3.0]


async def test_backoff_doubles_between_attempts():
    """Without Retry-After the waits grow exponentially (with ±20 % jitter)."""
    failing = DeliveryError("http503", "down", retryable=True)
    send, sleeps = Script(failing, failing, failing), Sleeps()
    outcome = await with_retry(send, RetryPolicy(attempts=4, base_seconds=1, budget_seconds=60), sleeps)
    assert outcome.ok
    assert len(sleeps.waits) == 3
    for wait, nominal in zip(sleeps.waits, (1, 2, 4), strict=True):
        assert 0.8 * nominal <= wait <= 1.2 * nominal


async def test_a_final_failure_is_not_retried():
    """A 400 is returned at once with its error."""
    send = Script(DeliveryError("http400", "bad", retryable=False))
    outcome = await with_retry(send, RetryPolicy(), Sleeps())
    assert (outcome.ok, outcome.attempts, outcome.error.code) == (False, 1, "http400")


async def test_a_wait_beyond_the_budget_is_not_started():
    """Retry-After 600 s with a 30 s budget: give up now and report the throttling."""
    send, sleeps = Script(Throttled("quota", 600.0)), Sleeps()
    outcome = await with_retry(send, RetryPolicy(budget_seconds=30), sleeps)
    assert (outcome.ok, outcome.throttled, sleeps.waits) == (False, 1, [])


def test_the_quota_refuses_the_31st_mail_of_a_minute_until_the_oldest_leaves_the_window():
    """30 per minute: the 31st waits until 60 s after the first; then it fits."""
    now = [0.0]
    quota = SendQuota(30, 100, clock=lambda: now[0])
    assert all(quota.reserve() == 0 for _ in range(30))
    now[0] = 10.0
    assert quota.reserve() == 50
    assert quota.refused == 1
    now[0] = 60.0
    assert quota.reserve() == 0


def test_the_hourly_quota_applies_across_minutes():
    """100 per hour: spread over minutes, the 101st must wait for the first hour to pass."""
    now = [0.0]
    quota = SendQuota(30, 100, clock=lambda: now[0])
    for i in range(100):
        now[0] = i * 20.0  # three a minute
        assert quota.reserve() == 0
    assert quota.reserve() == 3600 - now[0]


def test_a_service_429_pauses_every_send_until_its_retry_after():
    """After ACS's 429 (Retry-After 40) nothing is sent from here for 40 s."""
    now = [0.0]
    quota = SendQuota(30, 100, clock=lambda: now[0])
    quota.pause(40)
    assert quota.reserve() == 40
    now[0] = 40.0
    assert quota.reserve() == 0
