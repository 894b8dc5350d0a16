"""Bulk phone prepopulation at the write quota: sustained writes/s as a fraction of the quota, failures and
duplicates, and the ratios to a sequential per-user GET + POST baseline and to the runbook's ~2,000 users/h.

The documented quota (3,000 writes per 150 s per app and tenant) is enforced with its window compressed by
--time-scale (default 5: 3,000 writes per 30 s, within what one local process can drive) so that 20,000 users
finish in minutes; figures are reported relative to the quota in force, so the fraction is what the real quota
would show. 50 ms latency on every Graph request ($batch pays it once, as over the network). The first
3,000 writes ride the full bucket; "sustained" is measured after them.

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


async def ours(tenant: TenantServer, storage, ids: list[str], capacity: int) -> dict:
    graph = GraphCaller(graph_client(Settings(GRAPH_BASE_URL=tenant.graph_url)))
    tables = Tables(TableServiceClient.from_connection_string(storage.connection_string), f"b{uuid.uuid4().hex[:8]}")
    done_at: list[float] = []
    sync = PhoneSync(graph, PhoneRunStore(tables), default_region="US", max_batches=32,
                     on_step=lambda s: done_at.append(time.monotonic()))  # fmt: skip
    start = time.monotonic()
    summary = await sync.run(candidates(tenant, ids), key="bench")
    end = time.monotonic()
    await tables.close()
    done_at.sort()
    sustained = None
    if len(done_at) > capacity + 1:
        sustained = (len(done_at) - capacity - 1) / (done_at[-1] - done_at[capacity])
    return {"summary": summary, "wall": end - start, "sustained": sustained}


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
        result = asyncio.run(ours(tenant, storage, ids, QUOTA_WRITES))
        summary = result["summary"]
        created = sum(1 for i in ids for m in tenant.state.users[i]["methods"] if m.get("phoneType") == "mobile")
        twice = sum(
            1 for i in ids if sum(1 for m in tenant.state.users[i]["methods"] if m.get("phoneType") == "mobile") > 1
        )
    overall = summary.counts["add"] / result["wall"]
    fraction = (result["sustained"] or overall) / quota_rate
    scaled_users_per_hour = min(fraction, 1.0) * QUOTA_WRITES / QUOTA_WINDOW_S * 3600
    print(f"users: {args.users}; quota in force: {QUOTA_WRITES} writes per {window:g} s = {quota_rate:.1f}/s "
          f"(documented quota time-compressed x{args.time_scale:g}); latency {args.latency_ms} ms")  # fmt: skip
    print(f"added: {summary.counts['add']}, failed: {summary.counts['failed']}, mobiles present: {created}, "
          f"users with two mobiles: {twice}, writes sent: {summary.writes_sent}, "
          f"429/503 answers retried: {summary.throttled}, window halvings: {summary.halvings}, "
          f"peak batches in flight: {summary.peak_window:.1f}")  # fmt: skip
    print(f"wall: {result['wall']:.1f} s; overall {overall:.1f} writes/s")
    if result["sustained"]:
        print(f"sustained after the first {QUOTA_WRITES} (bucket) writes: {result['sustained']:.1f} writes/s = "
              f"{result['sustained'] / quota_rate:.1%} of the quota")  # fmt: skip
    print(f"sequential GET + POST baseline: {base_rate:.1f} users/s = {base_rate * 3600:,.0f} users/h "
          f"(not throttled; real-quota ceiling {QUOTA_WRITES / QUOTA_WINDOW_S * 3600:,.0f}/h)")  # fmt: skip
    print(f"at the real quota ours runs {scaled_users_per_hour:,.0f} users/h: "
          f"x{scaled_users_per_hour / RUNBOOK_USERS_PER_HOUR:.1f} the runbook's {RUNBOOK_USERS_PER_HOUR:,}/h, "
          f"x{scaled_users_per_hour / (base_rate * 3600):.2f} the sequential baseline")  # fmt: skip


if __name__ == "__main__":
    main()
