"""The Transport interface and the Recipient it delivers to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .message import Audience, Message


@dataclass(frozen=True)
class Recipient:
    audience: Audience
    user_id: str | None = None  # None for the channel
    name: str = ""
    email: str | None = None

    @property
    def label(self) -> str:
        """How audits name the recipient: the role and the object id (never an address)."""
        return f"{self.audience}:{self.user_id}" if self.user_id else str(self.audience)


class Transport(Protocol):
    name: str

    def accepts(self, recipient: Recipient) -> bool:
        """Whether this transport serves the recipient's audience (people or the channel)."""

    async def send(self, recipient: Recipient, message: Message, delivery_id: str) -> None:
        """Deliver once; raise notify.errors.DeliveryError on failure. `delivery_id` is stable across retries."""

    async def close(self) -> None: ...
