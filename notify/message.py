"""What a notification says, independent of transport, and who it is for."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .events import Event

# The only Event.data keys a template may read. Anything else an event carries is ignored, so a value that
# must never be sent (a Temporary Access Pass above all) cannot reach a message even if an event held it.
ALLOWED_DATA = (
    "pickupUrl",
    "expiresAt",
    "revealedByName",
    "revealedAt",
    "usableOnce",
    "pickupExpiresAt",
    "passLapsed",  # expired: the pass ran out after it was revealed, before a passkey was registered
)


class Audience(StrEnum):
    REQUESTER = "requester"
    MANAGER = "manager"
    TARGET = "target"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Message:
    subject: str
    heading: str
    paragraphs: tuple[str, ...]
    facts: tuple[tuple[str, str], ...] = ()
    link: tuple[str, str] | None = None  # (button title, url)
    alert: bool = False


@dataclass(frozen=True)
class Context:
    """What templates may use: display names, the request id, the event's detail and whitelisted data."""

    kind: str
    request_id: str
    target: str
    requester: str
    manager: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event, names: dict[str, str], manager_id: str | None = None) -> Context:
        def name(user_id: str | None, fallback: str) -> str:
            return names.get(user_id or "", "") or fallback

        return cls(
            kind=str(event.kind),
            request_id=event.request_id,
            target=event.target_name or name(event.target_id, "the user"),
            requester=name(event.requestor_id, "the requester"),
            manager=name(manager_id or event.manager_id, "the manager"),
            detail=event.detail,
            data={k: event.data[k] for k in ALLOWED_DATA if k in event.data},
        )
