"""Callouts received from Entitlement Management: recorded once per stage instance, then queued for the worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue.aio import QueueClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalloutKey:
    """What makes a callout unique: EM repeats a stage's callout with the same three values."""

    request_id: str
    stage: str
    stage_instance_id: str

    @property
    def row_key(self) -> str:
        return f"{self.stage}:{self.stage_instance_id}"


class CalloutStore:
    """Callouts table (PartitionKey = request id, RowKey = stage:instance) and the work queue."""

    def __init__(self, tables: TableServiceClient, queue: QueueClient, table_name: str):
        self._tables = tables
        self._work_queue = queue
        self._table_name = table_name
        self._table: TableClient | None = None
        self._queue: QueueClient | None = None
        self._pending: set[asyncio.Task] = set()

    async def _ensure(self) -> tuple[TableClient, QueueClient]:
        if self._table is None or self._queue is None:
            await self._tables.create_table_if_not_exists(self._table_name)
            with contextlib.suppress(ResourceExistsError):
                await self._work_queue.create_queue()
            self._table = self._tables.get_table_client(self._table_name)
            self._queue = self._work_queue
        return self._table, self._queue

    async def accept(self, key: CalloutKey, body: dict) -> bool:
        """Record the callout and queue it for the worker; False when this stage instance was seen before.

        A callout recorded but not yet queued (the process died in between) is queued by the repeat. Two
        storage calls sit on the acknowledgement path (EM waits at most 2 s); marking the record as queued
        happens after, off that path: if it is lost, a repeat queues the callout again, which the worker's
        checkpoints make harmless.
        """
        table, queue = await self._ensure()
        entity = {
            "PartitionKey": key.request_id,
            "RowKey": key.row_key,
            "Stage": key.stage,
            "StageInstanceId": key.stage_instance_id,
            "ReceivedAt": datetime.now(UTC),
            "Body": json.dumps(body, separators=(",", ":"))[:30_000],
            "Enqueued": False,
        }
        new = True
        try:
            await table.create_entity(entity)
        except ResourceExistsError:
            new = False
            entity = await table.get_entity(key.request_id, key.row_key)
            if entity.get("Enqueued"):
                return False
        message = {"requestId": key.request_id, "stage": key.stage, "stageInstanceId": key.stage_instance_id}
        await queue.send_message(json.dumps(message).encode())
        task = asyncio.create_task(self._mark_enqueued(table, key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return new

    async def _mark_enqueued(self, table: TableClient, key: CalloutKey) -> None:
        try:
            await table.update_entity(
                {"PartitionKey": key.request_id, "RowKey": key.row_key, "Enqueued": True}, mode=UpdateMode.MERGE
            )
        except Exception:  # a lost mark only costs a harmless second message on a repeat
            log.warning("could not mark callout %s %s as queued", key.request_id, key.row_key, exc_info=True)

    async def flush(self) -> None:
        """Wait for background marks (tests and shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def get(self, key: CalloutKey) -> dict | None:
        table, _ = await self._ensure()
        try:
            return dict(await table.get_entity(key.request_id, key.row_key))
        except ResourceNotFoundError:
            return None

    async def close(self) -> None:
        await self.flush()
        await self._tables.close()
        await self._work_queue.close()
