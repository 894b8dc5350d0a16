"""The sweep's bounded, resumable walk over Azurite: a run takes at most its share of pickups, the next continues
after the last one, and a finished pass over the working set starts over."""

from __future__ import annotations

import uuid
from datetime import timedelta

from azure.data.tables.aio import TableServiceClient

from extensions.settings import Settings
from extensions.sweep import Sweep
from notify import RecordingNotifier
from store.pickups import PickupStore
from store.records import ResetStore
from store.sweep import SweepStore
from store.tables import Tables


async def test_runs_take_a_bounded_share_and_continue_where_the_last_one_stopped(azurite):
    """Three pickups, two per run: 2, then the last 1 (wrapping), then the first 2 again; closed ones never come."""
    tables = Tables(TableServiceClient.from_connection_string(azurite.connection_string), f"s{uuid.uuid4().hex[:8]}")
    pickups = PickupStore(tables)
    opened = [await pickups.open_for_request(f"r{i}", f"t{i}", f"T{i}", "m", timedelta(hours=8), "") for i in range(4)]
    assert await pickups.transition(await pickups.get(opened[3].id), "closed")
    ids = sorted(p.id for p in opened[:3])
    store = SweepStore(tables)
    settings = Settings(SWEEP_MAX_PICKUPS_PER_RUN=2)
    # No reset is recorded for these pickups, so every visit is "skipped" without calling Graph.
    sweep = Sweep(settings, None, None, ResetStore(tables), pickups, store, RecordingNotifier())  # type: ignore[arg-type]
    try:
        first = await sweep.run()
        assert (first.visited, first.wrapped, await store.cursor()) == (2, False, ids[1])
        second = await sweep.run()
        assert (second.visited, second.wrapped, await store.cursor()) == (1, True, "")
        third = await sweep.run()
        assert third.outcomes["skipped"] == 2
        assert await store.cursor() == ids[1]
    finally:
        await tables.close()
