"""The completion sweep's working set (pickups still open or revealed) and its resumable cursor."""

from __future__ import annotations

from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError

from .pickups import ROW, Pickup
from .tables import Tables

ACTIVE = ("open", "revealed")
CURSOR = ("cursor", "cursor")  # PartitionKey, RowKey of the one checkpoint row in <prefix>sweep


class SweepStore:
    """Reads pickups in PartitionKey (pickup id) order after a saved cursor, so a run that stops early (its item
    or time budget, a throttled Graph) continues where it stopped instead of starting over."""

    def __init__(self, tables: Tables):
        self._tables = tables

    async def active_after(self, cursor: str, limit: int) -> list[Pickup]:
        """Up to `limit` open or revealed pickups whose id sorts after `cursor`."""
        table = await self._tables.get("pickups")
        # Spaces inside the parentheses: the SDK finds @names by splitting the filter on whitespace.
        query = "PartitionKey gt @cursor and RowKey eq @row and ( State eq @open or State eq @revealed )"
        rows = table.query_entities(
            query, parameters={"cursor": cursor, "row": ROW, "open": ACTIVE[0], "revealed": ACTIVE[1]}
        )
        found: list[Pickup] = []
        async for row in rows:
            found.append(Pickup.from_entity(row))
            if len(found) >= limit:
                break
        return found

    async def cursor(self) -> str:
        table = await self._tables.get("sweep")
        try:
            return (await table.get_entity(*CURSOR)).get("After", "")
        except ResourceNotFoundError:
            return ""

    async def save_cursor(self, after: str) -> None:
        table = await self._tables.get("sweep")
        await table.upsert_entity(
            {"PartitionKey": CURSOR[0], "RowKey": CURSOR[1], "After": after, "SavedAt": datetime.now(UTC)}
        )
