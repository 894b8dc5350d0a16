"""The Notifier interface the workflow calls, and a recording implementation (until transports land)."""

from __future__ import annotations

import logging
from typing import Protocol

from .events import Event

log = logging.getLogger(__name__)


class Notifier(Protocol):
    async def notify(self, event: Event) -> None:
        """Deliver the event to its recipients; never raises for a delivery failure."""


class RecordingNotifier:
    """Keeps every event in memory and logs it; what tests and local runs use before real transports exist."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def notify(self, event: Event) -> None:
        self.events.append(event)
        log.info("notify %s request=%s target=%s", event.kind, event.request_id, event.target_id)
