"""One open reset per user, even when two requests are decided at the same moment (Azurite)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from store.records import OPEN_SLOT, Reset, ResetStore
from store.tables import Tables

TARGET = "00000000-0000-4000-8000-000000000004"


@pytest.fixture
async def resets(azurite) -> AsyncIterator[ResetStore]:
    tables = Tables(TableServiceClient.from_connection_string(azurite.connection_string), f"s{uuid.uuid4().hex[:8]}")
    yield ResetStore(tables)
    await tables.close()


def reset_for(target: str = TARGET) -> Reset:
    return Reset(str(uuid.uuid4()), target, "requestor", "package")


async def test_of_ten_resets_opened_at_once_for_one_user_exactly_one_opens(resets: ResetStore):
    opened = await asyncio.gather(*(resets.create(reset_for()) for _ in range(10)))
    assert sum(1 for r in opened if r is not None) == 1
    assert len(await resets.for_target(TARGET)) == 1  # the slot row is not a reset


async def test_a_redelivered_decision_opens_the_same_reset_again(resets: ResetStore):
    first = reset_for()
    assert await resets.create(first) is not None
    again = await resets.create(Reset(first.request_id, TARGET, "requestor", "package"))
    assert again is not None
    assert again.request_id == first.request_id


async def test_closing_a_reset_frees_the_user_for_the_next_one(resets: ResetStore):
    first = await resets.create(reset_for())
    assert await resets.create(reset_for()) is None
    first.state = "completed"
    await resets.save(first)
    assert await resets.create(reset_for()) is not None


async def test_resets_of_different_users_do_not_block_each_other(resets: ResetStore):
    opened = await asyncio.gather(resets.create(reset_for()), resets.create(reset_for("another-user")))
    assert all(r is not None for r in opened)


async def test_a_slot_whose_reset_was_never_recorded_is_taken_over_once_stale(resets: ResetStore):
    """A worker that died between taking the slot and recording its reset blocks the user only for a while."""
    targets = await resets._tables.get("targets")
    taken = datetime.now(UTC)
    orphan = {"PartitionKey": TARGET, "RowKey": OPEN_SLOT, "RequestId": str(uuid.uuid4()), "TakenAt": taken}
    await targets.create_entity(orphan)
    assert await resets.create(reset_for()) is None  # maybe still being recorded: wait
    await targets.upsert_entity({**orphan, "TakenAt": taken - timedelta(minutes=31)})
    assert await resets.create(reset_for()) is not None


async def test_a_redelivered_decision_and_a_stale_takeover_cannot_both_win(resets: ResetStore):
    """A worker's decision comes back just as another request finds the slot stale: exactly one of them opens."""
    targets = await resets._tables.get("targets")
    mine = reset_for()
    old = datetime.now(UTC) - timedelta(minutes=31)
    slot = {"PartitionKey": TARGET, "RowKey": OPEN_SLOT, "RequestId": mine.request_id, "TakenAt": old}
    await targets.create_entity(slot)
    opened = await asyncio.gather(resets.create(mine), resets.create(reset_for()))
    assert sum(1 for r in opened if r is not None) == 1
