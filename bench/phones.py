"""Bulk phone prepopulation at the write quota: writes as a fraction of what the quota permits, failures and
duplicates, and the ratios to a sequential per-user GET + POST baseline and to the runbook's ~2,000 users/h.

The documented quota (3,000 writes per 150 s per app and tenant) is enforced with its window compressed by
--time-scale (default 5: 3,000 writes per 30 s, within what one local process can drive) so that 20,000 users
finish in minutes; figures are reported relative to the quota in force, so the fraction is what the real quota
would show. 50 ms latency on every Graph request ($batch pays it once, as over the network). The first
3,000 writes ride the full bucket; the fraction reported is writes done / (bucket + refill over the wall time).
Measured here: Azurite (the checkpoint store) slows as its tables grow, so one local process drives ~40-140
writes/s; --time-scale above ~2 measures Azurite, not the controller. 8,000 users at the real quota take ~4 min.

    .venv/bin/python -m bench.phones [--users 20000] [--latency-ms 50] [--time-scale 5] [--baseline-users 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import httpx
from azure.data.tables.aio import TableServiceClient

from bench.stack import azurite
from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller
from local.tenant import TenantServer
from phones.select import Candidate
from phones.sync import PhoneSync
from store.phone_runs import PhoneRunStore
from store.tables import Tables
from tests.phones.helpers import add_users

QUOTA_WRITES, QUOTA_WINDOW_S = 3000, 150
RUNBOOK_USERS_PER_HOUR = 2000


def candidates(tenant: TenantServer, ids: list[str]) -> list[Candidate]:
    users = tenant.state.users
    return [Candidate(i, users[i]["userPrincipalName"], users[i]["mobilePhone"]) for i in ids]


async def ours(tenant: TenantServer, storage, ids: list[str]) -> dict:
    graph = GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant.graph_url)))
    tables = Tables(TableServiceClient.from_connection_string(storage.connection_string), f"b{uuid.uuid4().hex[:8]}")
    sync = PhoneSync(graph, PhoneRunStore(tables), default_region="US", max_batches=32)
    start = time.monotonic()
    summary = await sync.run(candidates(tenant, ids), key="bench")
    end = time.monotonic()
    await tables.close()
    return {"summary": summary, "wall": end - start}


async def baseline(tenant: TenantServer, ids: list[str]) -> float:
    """Sequential: per user GET phoneMethods then POST; users/s."""
    graph = GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant.graph_url)))
    users = tenant.state.users
    start = time.monotonic()
    for uid in ids:
        await graph.json("GET", f"/users/{uid}/authentication/phoneMethods")
        number = "+1 " + users[uid]["mobilePhone"].replace("+1", "").replace(" ", "")
        await graph.json("POST", f"/users/{uid}/authentication/phoneMethods",
                         body={"phoneNumber": number, "phoneType": "mobile"})  # fmt: skip
    return len(ids) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=5.0)
    parser.add_argument("--baseline-users", type=int, default=200)
    args = parser.parse_args()
    window = QUOTA_WINDOW_S / args.time_scale
    quota_rate = QUOTA_WRITES / window
    with azurite() as storage, TenantServer(port=0, https_port=0) as tenant:
        os.environ.update(tenant.env())
        ids = add_users(tenant, args.users)
        base_ids = add_users(tenant, args.baseline_users, prefix="base")
        httpx.put(f"{tenant.url}/_control/latency", json=[{"prefix": "/v1.0", "fixedMs": args.latency_ms}])
        # The baseline first, unthrottled at the real (unscaled) quota it could never reach sequentially anyway.
        base_rate = asyncio.run(baseline(tenant, base_ids))
        httpx.put(
            f"{tenant.url}/_control/throttle",
            json={"limits": {"writes": QUOTA_WRITES, "resourceUnits": 3500 * 100},
                  "windows": {"writes": window, "resourceUnits": 10}},
        ).raise_for_status()  # fmt: skip
        result = asyncio.run(ours(tenant, storage, ids))
        summary = result["summary"]
        created = sum(1 for i in ids for m in tenant.state.users[i]["methods"] if m.get("phoneType") == "mobile")
        twice = sum(
            1 for i in ids if sum(1 for m in tenant.state.users[i]["methods"] if m.get("phoneType") == "mobile") > 1
        )
    overall = summary.counts["add"] / result["wall"]
    print(f"users: {args.users}; quota in force: {QUOTA_WRITES} writes per {window:g} s = {quota_rate:.1f}/s "
          f"(documented quota time-compressed x{args.time_scale:g}); latency {args.latency_ms} ms")  # fmt: skip
    print(f"added: {summary.counts['add']}, failed: {summary.counts['failed']}, mobiles present: {created}, "
          f"users with two mobiles: {twice}, writes sent: {summary.writes_sent}, "
          f"429/503 answers retried: {summary.throttled}, window halvings: {summary.halvings}, "
          f"peak batches in flight: {summary.peak_window:.1f}")  # fmt: skip
    print(f"wall: {result['wall']:.1f} s; overall {overall:.1f} writes/s")
    # What the quota permits in the wall time: the full bucket plus its refill. (A rate measured after the
    # first `capacity` writes overstates: the bucket refilled while they were written.)
    permitted = QUOTA_WRITES + quota_rate * result["wall"]
    done = summary.counts["add"]
    print(f"writes done / what the quota permitted in that time ({permitted:,.0f}): {done:,} = {done / permitted:.1%}")
    print(f"sequential GET + POST baseline: {base_rate:.1f} users/s = {base_rate * 3600:,.0f} users/h "
          f"(not throttled; real-quota ceiling {QUOTA_WRITES / QUOTA_WINDOW_S * 3600:,.0f}/h)")  # fmt: skip
    ours_per_hour = overall * 3600
    print(f"ours in this run: {ours_per_hour:,.0f} users/h (the first 3,000 ride the full bucket): "
          f"x{ours_per_hour / RUNBOOK_USERS_PER_HOUR:.1f} the runbook's {RUNBOOK_USERS_PER_HOUR:,}/h, "
          f"x{ours_per_hour / (base_rate * 3600):.2f} the sequential baseline")  # fmt: skip


if __name__ == "__main__":
    main()
