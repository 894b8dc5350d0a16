"""Checkpoints of bulk phone runs, so a run cut off by a timeout or crash continues where it stopped.

Tables: `phoneruns` (PK "run", RK run id: mode, source, status, counters; PK "open", RK run key: the unfinished
run of a trigger) and `phoneusers` (PK run id, RK user id: one row per user). A user row is `claimed` before
its write is sent and `done` (with the outcome) after it: a user found `done` is never planned again, and one
found `claimed` is re-read from Graph and re-planned, never written blindly, so a write that landed before a
crash is not repeated. Phone numbers are written here (they are directory data, not secrets); tokens never are.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.data.tables import UpdateMode

from .tables import Tables

TRANSIENT_ATTEMPTS = 4  # checkpoint upserts are idempotent: a reset connection or a 5xx is simply retried
CLAIMED = "claimed"
DONE = "done"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PhoneRun:
    run_id: str
    key: str
    mode: str
    dry_run: bool = False
    status: str = "running"
    started_at: datetime = field(default_factory=_now)
    finished_at: datetime | None = None
    counters: dict[str, int] = field(default_factory=dict)
    resumed: int = 0


async def _submit(table, ops: list) -> None:
    for attempt in range(TRANSIENT_ATTEMPTS):
        try:
            await table.submit_transaction(ops)
            return
        except (ServiceRequestError, ServiceResponseError) as exc:
            error: Exception = exc
        except HttpResponseError as exc:
            if exc.status_code is None or exc.status_code < 500:
                raise
            error = exc
        if attempt == TRANSIENT_ATTEMPTS - 1:
            raise error
        await asyncio.sleep(0.2 * 2**attempt)


class PhoneRunStore:
    def __init__(self, tables: Tables):
        self._tables = tables

    async def open_run(self, key: str, mode: str, dry_run: bool = False) -> PhoneRun:
        """The unfinished run of `key` with the same mode (resumed), or a new one. Dry runs never resume."""
        runs = await self._tables.get("phoneruns")
        if not dry_run:
            try:
                pointer = await runs.get_entity("open", key)
                existing = await self.get(pointer["RunId"])
                if existing and existing.status == "running" and existing.mode == mode:
                    existing.resumed += 1
                    await runs.upsert_entity(
                        {"PartitionKey": "run", "RowKey": existing.run_id, "Resumed": existing.resumed},
                        mode=UpdateMode.MERGE,
                    )
                    return existing
            except ResourceNotFoundError:
                pass
        run = PhoneRun(run_id=f"{_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}", key=key, mode=mode,
                       dry_run=dry_run)  # fmt: skip
        await runs.create_entity(
            {
                "PartitionKey": "run",
                "RowKey": run.run_id,
                "Key": key,
                "Mode": mode,
                "DryRun": dry_run,
                "Status": run.status,
                "StartedAt": run.started_at,
                "Counters": "{}",
                "Resumed": 0,
            }
        )
        if not dry_run:
            await runs.upsert_entity({"PartitionKey": "open", "RowKey": key, "RunId": run.run_id})
        return run

    async def get(self, run_id: str) -> PhoneRun | None:
        runs = await self._tables.get("phoneruns")
        try:
            row = await runs.get_entity("run", run_id)
        except ResourceNotFoundError:
            return None
        return PhoneRun(
            run_id=run_id,
            key=row["Key"],
            mode=row["Mode"],
            dry_run=bool(row.get("DryRun")),
            status=row["Status"],
            started_at=row["StartedAt"],
            finished_at=row.get("FinishedAt"),
            counters=json.loads(row.get("Counters") or "{}"),
            resumed=int(row.get("Resumed") or 0),
        )

    async def finish(self, run: PhoneRun, counters: dict[str, int], status: str = "finished") -> None:
        runs = await self._tables.get("phoneruns")
        run.status, run.finished_at, run.counters = status, _now(), counters
        await runs.upsert_entity(
            {"PartitionKey": "run", "RowKey": run.run_id, "Status": status, "FinishedAt": run.finished_at,
             "Counters": json.dumps(counters)},
            mode=UpdateMode.MERGE,
        )  # fmt: skip
        if not run.dry_run:
            await runs.delete_entity("open", run.key)  # no error when already gone

    async def users(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Every user row of a run, by user id."""
        table = await self._tables.get("phoneusers")
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": run_id})
        return {row["RowKey"]: dict(row) async for row in rows}

    async def claim(self, run_id: str, user_ids: list[str]) -> None:
        """Mark users as about to be written (one transaction per 100, the Tables batch limit)."""
        table = await self._tables.get("phoneusers")
        at = _now()
        for start in range(0, len(user_ids), 100):
            ops = [
                ("upsert", {"PartitionKey": run_id, "RowKey": uid, "State": CLAIMED, "At": at}, {"mode": "merge"})
                for uid in user_ids[start : start + 100]
            ]
            await _submit(table, ops)

    async def done(self, run_id: str, outcomes: list[dict[str, Any]]) -> None:
        """Record outcomes: dicts with user_id, action, number, detail."""
        table = await self._tables.get("phoneusers")
        at = _now()
        for start in range(0, len(outcomes), 100):
            ops = [
                (
                    "upsert",
                    {
                        "PartitionKey": run_id,
                        "RowKey": o["user_id"],
                        "State": DONE,
                        "Action": o["action"],
                        "Number": o.get("number") or "",
                        "Detail": (o.get("detail") or "")[:1000],
                        "At": at,
                    },
                    {"mode": "replace"},
                )
                for o in outcomes[start : start + 100]
            ]
            await _submit(table, ops)
