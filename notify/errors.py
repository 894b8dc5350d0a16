"""Typed delivery errors of the transports: whether a retry can help and how long the service asked to wait."""

from __future__ import annotations


class DeliveryError(Exception):
    """One delivery failed. `code` names the cause in the audit (never a secret or a message body)."""

    def __init__(self, code: str, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class Throttled(DeliveryError):
    """The service (or our own quota keeper) refused for now; `retry_after` says when to try again."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__("throttled", message, retryable=True, retry_after=retry_after)


class NotDeliverable(DeliveryError):
    """The recipient cannot be reached on this transport (no mailbox, not a Teams user): no retry, no alarm."""

    def __init__(self, message: str):
        super().__init__("notDeliverable", message, retryable=False)


def from_status(status: int, what: str, retry_after: float | None = None) -> DeliveryError:
    """An HTTP error status as a DeliveryError: 429 throttled, 408/5xx retryable, other 4xx final."""
    if status == 429:
        return Throttled(f"{what} answered 429", retry_after)
    retryable = status == 408 or status >= 500
    return DeliveryError(f"http{status}", f"{what} answered {status}", retryable=retryable, retry_after=retry_after)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by these services)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
