"""Pickups: the manager's one chance to reveal a Temporary Access Pass. The pass itself is never stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .tables import Tables

ROW = "pickup"


@dataclass
class Pickup:
    id: str
    request_id: str
    target_id: str
    target_name: str
    deliverer_id: str
    state: str  # open, revealed, closed, expired
    created_at: datetime
    expires_at: datetime
    reset_summary: str = ""
    revealed_by: str = ""
    revealed_at: datetime | None = None
    revealed_by_name: str = ""
    pass_expires_at: datetime | None = None
    # Anti-CSRF nonce of the reveal form: only a page served to a signed-in viewer carries it.
    csrf_nonce: str = ""
    etag: str | None = None

    def entity(self) -> dict[str, Any]:
        entity = {
            "PartitionKey": self.id,
            "RowKey": ROW,
            "RequestId": self.request_id,
            "TargetId": self.target_id,
            "TargetName": self.target_name,
            "DelivererId": self.deliverer_id,
            "State": self.state,
            "CreatedAt": self.created_at,
            "ExpiresAt": self.expires_at,
            "ResetSummary": self.reset_summary[:4000],
            "RevealedBy": self.revealed_by,
            "RevealedByName": self.revealed_by_name,
            "CsrfNonce": self.csrf_nonce,
        }
        if self.revealed_at is not None:
            entity["RevealedAt"] = self.revealed_at
        if self.pass_expires_at is not None:
            entity["PassExpiresAt"] = self.pass_expires_at
        return entity

    @classmethod
    def from_entity(cls, entity: Any) -> Pickup:
        return cls(
            id=entity["PartitionKey"],
            request_id=entity["RequestId"],
            target_id=entity["TargetId"],
            target_name=entity.get("TargetName", ""),
            deliverer_id=entity["DelivererId"],
            state=entity["State"],
            created_at=entity["CreatedAt"],
            expires_at=entity["ExpiresAt"],
            reset_summary=entity.get("ResetSummary", ""),
            revealed_by=entity.get("RevealedBy", ""),
            revealed_at=entity.get("RevealedAt"),
            revealed_by_name=entity.get("RevealedByName", ""),
            pass_expires_at=entity.get("PassExpiresAt"),
            csrf_nonce=entity.get("CsrfNonce", ""),
            etag=entity.metadata.get("etag") if hasattr(entity, "metadata") else None,
        )


class PickupStore:
    """Table `<prefix>pickups`, PK = pickup id (unguessable), plus a per-request pointer row in the same table."""

    def __init__(self, tables: Tables):
        self._tables = tables

    async def open_for_request(
        self,
        request_id: str,
        target_id: str,
        target_name: str,
        deliverer_id: str,
        lifetime: timedelta,
        reset_summary: str,
    ) -> Pickup:
        """The request's pickup, created once: a redelivered stage gets the same pickup back."""
        table = await self._tables.get("pickups")
        pointer_key = f"request-{request_id}"
        try:
            pointer = await table.get_entity(pointer_key, "pointer")
            existing = await self.get(pointer["PickupId"])
            if existing is not None:
                return existing
        except ResourceNotFoundError:
            pass
        now = datetime.now(UTC)
        pickup = Pickup(
            id=secrets.token_urlsafe(24),
            request_id=request_id,
            target_id=target_id,
            target_name=target_name,
            deliverer_id=deliverer_id,
            state="open",
            created_at=now,
            expires_at=now + lifetime,
            reset_summary=reset_summary,
            csrf_nonce=secrets.token_urlsafe(24),
        )
        try:
            await table.create_entity({"PartitionKey": pointer_key, "RowKey": "pointer", "PickupId": pickup.id})
        except ResourceExistsError:  # a concurrent delivery won the race: use its pickup
            pointer = await table.get_entity(pointer_key, "pointer")
            return await self.get(pointer["PickupId"])  # type: ignore[return-value]
        await table.create_entity(pickup.entity())
        return pickup

    async def get(self, pickup_id: str) -> Pickup | None:
        table = await self._tables.get("pickups")
        try:
            return Pickup.from_entity(await table.get_entity(pickup_id, ROW))
        except ResourceNotFoundError:
            return None

    async def for_request(self, request_id: str) -> Pickup | None:
        table = await self._tables.get("pickups")
        try:
            pointer = await table.get_entity(f"request-{request_id}", "pointer")
        except ResourceNotFoundError:
            return None
        return await self.get(pointer["PickupId"])

    async def transition(self, pickup: Pickup, state: str, **fields: Any) -> bool:
        """Move the pickup to `state` only if nobody changed it since it was read (optimistic concurrency)."""
        table = await self._tables.get("pickups")
        entity = {"PartitionKey": pickup.id, "RowKey": ROW, "State": state, **fields}
        try:
            await table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=pickup.etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return False
        return True
