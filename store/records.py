"""Resets, their step checkpoints, the per-target index, and the audit trail. No secret is ever written here."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .tables import Tables

OPEN = "open"
RESET_ROW = "reset"
# RowKey of the row in `targets` that names the target's one open reset (request ids are GUIDs, never this).
OPEN_SLOT = "~open"
# A slot whose reset never got recorded (the worker died in between) is taken over after this long: well past the
# longest a worker may hold a message (host.json functionTimeout, 10 min), so its redelivery comes first.
STALE_SLOT = timedelta(minutes=30)


def _now() -> datetime:
    return datetime.now(UTC)


async def _replace_if_unchanged(table: Any, entity: dict[str, Any], read: Any) -> bool:
    """Replace `entity` only if the row is still as `read` left it (its ETag); False when someone changed it."""
    try:
        await table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=read.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


@dataclass
class Reset:
    request_id: str
    target_id: str
    requestor_id: str
    access_package_id: str
    state: str = OPEN
    created_at: datetime = field(default_factory=_now)
    detail: str = ""
    deleted_methods: list[str] = field(default_factory=list)
    remaining_methods: list[str] = field(default_factory=list)
    pickup_id: str | None = None

    def entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": self.request_id,
            "RowKey": RESET_ROW,
            "TargetId": self.target_id,
            "RequestorId": self.requestor_id,
            "AccessPackageId": self.access_package_id,
            "State": self.state,
            "CreatedAt": self.created_at,
            "Detail": self.detail,
            "DeletedMethods": json.dumps(self.deleted_methods),
            "RemainingMethods": json.dumps(self.remaining_methods),
            "PickupId": self.pickup_id or "",
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Reset:
        return cls(
            request_id=entity["PartitionKey"],
            target_id=entity["TargetId"],
            requestor_id=entity["RequestorId"],
            access_package_id=entity["AccessPackageId"],
            state=entity["State"],
            created_at=entity["CreatedAt"],
            detail=entity.get("Detail", ""),
            deleted_methods=json.loads(entity.get("DeletedMethods") or "[]"),
            remaining_methods=json.loads(entity.get("RemainingMethods") or "[]"),
            pickup_id=entity.get("PickupId") or None,
        )


class ResetStore:
    """Tables: resets (PK request id), steps (PK request id, RK stage:instance:step), targets (PK target id,
    RK request id: the index the one-open-reset and rate-limit guardrails read), audit (PK request id)."""

    def __init__(self, tables: Tables):
        self._tables = tables

    # --- resets ---------------------------------------------------------------------------------------
    async def create(self, reset: Reset) -> Reset | None:
        """Insert the reset and its target index row; an existing reset for the request is returned as is.

        None when another reset of the same target is open: the target's open slot is taken with a conditional
        insert first, so two requests decided at the same moment cannot both open a reset.
        """
        if reset.state == OPEN and not await self._take_slot(reset.target_id, reset.request_id):
            return None
        resets = await self._tables.get("resets")
        try:
            await resets.create_entity(reset.entity())
        except ResourceExistsError:
            return await self.get(reset.request_id)  # type: ignore[return-value]
        targets = await self._tables.get("targets")
        await targets.upsert_entity(
            {
                "PartitionKey": reset.target_id,
                "RowKey": reset.request_id,
                "State": reset.state,
                "CreatedAt": reset.created_at,
            }
        )
        return reset

    async def get(self, request_id: str) -> Reset | None:
        resets = await self._tables.get("resets")
        try:
            return Reset.from_entity(await resets.get_entity(request_id, RESET_ROW))
        except ResourceNotFoundError:
            return None

    async def save(self, reset: Reset) -> None:
        resets = await self._tables.get("resets")
        await resets.upsert_entity(reset.entity(), mode=UpdateMode.MERGE)
        targets = await self._tables.get("targets")
        await targets.upsert_entity(
            {"PartitionKey": reset.target_id, "RowKey": reset.request_id, "State": reset.state}, mode=UpdateMode.MERGE
        )
        if reset.state != OPEN:
            await self._release_slot(reset.target_id, reset.request_id)

    async def _take_slot(self, target_id: str, request_id: str) -> bool:
        targets = await self._tables.get("targets")
        slot = {"PartitionKey": target_id, "RowKey": OPEN_SLOT, "RequestId": request_id, "TakenAt": _now()}
        try:
            await targets.create_entity(slot)
            return True
        except ResourceExistsError:
            pass
        try:
            held = await targets.get_entity(target_id, OPEN_SLOT)
        except ResourceNotFoundError:
            return False  # released this instant by the other reset: the caller's guardrails ran before that
        if held["RequestId"] == request_id:
            # A redelivery of the same decision: renew the slot, conditionally, so a takeover that judged it stale
            # at the same moment cannot also succeed (one of the two updates loses on the ETag).
            return await _replace_if_unchanged(targets, slot, held)
        holder = await self.get(held["RequestId"])
        stale = holder is None and held["TakenAt"] < _now() - STALE_SLOT
        if not stale and (holder is None or holder.state == OPEN):
            return False
        # The holder is closed (or never got recorded): take the slot over, unless someone else just did.
        return await _replace_if_unchanged(targets, slot, held)

    async def _release_slot(self, target_id: str, request_id: str) -> None:
        targets = await self._tables.get("targets")
        try:
            held = await targets.get_entity(target_id, OPEN_SLOT)
            if held["RequestId"] == request_id:
                await targets.delete_entity(
                    target_id, OPEN_SLOT, etag=held.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # already released, or taken over by the next reset

    async def for_target(self, target_id: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """Index rows of every reset of a target (optionally created since a time)."""
        targets = await self._tables.get("targets")
        rows = targets.query_entities("PartitionKey eq @pk", parameters={"pk": target_id})
        found = [dict(row) async for row in rows if row["RowKey"] != OPEN_SLOT]
        if since is not None:
            found = [row for row in found if row["CreatedAt"] >= since]
        return found

    async def recent_count(self, target_id: str, window: timedelta) -> int:
        return len(await self.for_target(target_id, _now() - window))

    # --- step checkpoints ---------------------------------------------------------------------------
    async def step_done(self, request_id: str, step: str) -> dict[str, Any] | None:
        steps = await self._tables.get("steps")
        try:
            return dict(await steps.get_entity(request_id, step))
        except ResourceNotFoundError:
            return None

    async def mark_step(self, request_id: str, step: str, **data: Any) -> None:
        steps = await self._tables.get("steps")
        await steps.upsert_entity({"PartitionKey": request_id, "RowKey": step, "DoneAt": _now(), **data})

    async def claim(self, request_id: str, step: str) -> bool:
        """Claim a once-only step (insert-if-absent); False when it was claimed before."""
        steps = await self._tables.get("steps")
        try:
            await steps.create_entity({"PartitionKey": request_id, "RowKey": step, "ClaimedAt": _now()})
        except ResourceExistsError:
            return False
        return True

    async def update_if_unchanged(self, table: str, entity: dict[str, Any], etag: str) -> bool:
        client = await self._tables.get(table)
        try:
            await client.update_entity(
                entity, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return False
        return True

    # --- audit ------------------------------------------------------------------------------------------
    async def audit(self, request_id: str, event: str, actor: str = "", detail: str = "", **data: Any) -> None:
        """Append one audit record. Callers pass names, ids and outcomes only: never a pass or token."""
        audit = await self._tables.get("audit")
        at = _now()
        await audit.create_entity(
            {
                "PartitionKey": request_id,
                "RowKey": f"{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}",
                "Event": event,
                "Actor": actor,
                "Detail": detail[:4000],
                "At": at,
                "Data": json.dumps(data, default=str)[:30000],
            }
        )

    async def audit_trail(self, request_id: str) -> list[dict[str, Any]]:
        audit = await self._tables.get("audit")
        rows = audit.query_entities("PartitionKey eq @pk", parameters={"pk": request_id})
        return sorted([dict(row) async for row in rows], key=lambda row: row["RowKey"])
