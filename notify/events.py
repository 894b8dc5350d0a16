"""What happened, for whom: the events the workflow raises. Never carries a Temporary Access Pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    REQUESTED = "requested"
    DENIED = "denied"
    APPROVED = "approved"
    PICKUP_READY = "pickupReady"
    REVEALED = "revealed"
    COMPLETED = "completed"
    REMOVED = "removed"
    EXPIRED = "expired"
    FAILURE = "failure"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    request_id: str
    target_id: str | None = None
    target_name: str | None = None
    requestor_id: str | None = None
    manager_id: str | None = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
