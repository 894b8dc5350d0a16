"""Callout acknowledgement latency: 200 concurrent signed callouts through the dev host (token verification,
conditional insert in Azurite, enqueue) → p50/p99 and their ratio to EM's default 1,000 ms budget.

The dev host runs in its own process, as `func start` would (with --in-process it shares this one, and its
interpreter lock with the load generator). Also printed, for scale: the same number of bare SDK inserts and
queue sends straight into Azurite, which is the floor for any design that records each callout before answering.

    .venv/bin/python -m bench.callout_ack [--callouts 200] [--concurrency 200] [--in-process]
Needs Azurite (started here on free ports from node_modules) and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueClient

from bench.stack import azurite
from local.host import DevHost
from local.tenant import TenantServer
from tests.conftest import _free_port, _wait_port
from tests.extensions.tokens import genuine
from tests.stack import product_settings

ROOT = Path(__file__).resolve().parents[1]

EM_BUDGET_MS = 1000.0


def callout_body() -> dict:
    request_id = str(uuid.uuid4())
    return {
        "AccessPackageAssignmentRequestId": request_id,
        "CustomExtensionStageInstanceId": str(uuid.uuid4()),
        "Stage": "assignmentRequestCreated",
        "CallbackUriPath": f"/identityGovernance/entitlementManagement/assignmentRequests/{request_id}/resume",
        "CallbackConfiguration": {"DurationBeforeTimeout": "PT1H"},
        "AccessPackage": {"Id": str(uuid.uuid4()), "DisplayName": "MFA reset"},
    }


async def fire(url: str, token: str, callouts: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = await http.post(url, json=callout_body(), headers={"Authorization": f"Bearer {token}"})
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 202, response.text

        await asyncio.gather(*(one() for _ in range(20)))  # warm: JWKS fetch, tables, connections
        latencies.clear()
        await asyncio.gather(*(one() for _ in range(callouts)))
    return latencies


@contextlib.contextmanager
def host_process(settings: dict[str, str]) -> Iterator[str]:
    """`python -m local.host` in its own process (HTTP only); its base URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "local.settings.json"
        file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}), encoding="utf-8")
        command = [sys.executable, "-m", "local.host", "--settings", str(file), "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--no-queues", "--no-timers"],
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


async def storage_floor(connection_string: str, count: int) -> tuple[float, float]:
    """Wall ms of `count` concurrent bare SDK inserts, then of `count` concurrent queue sends, into Azurite."""
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table_if_not_exists(f"floor{uuid.uuid4().hex[:8]}")
        async with QueueClient.from_connection_string(connection_string, f"floor-{uuid.uuid4().hex[:8]}") as queue:
            await queue.create_queue()
            for _ in range(10):  # warm the connections
                await table.create_entity({"PartitionKey": str(uuid.uuid4()), "RowKey": "w"})
                await queue.send_message("w")
            started = time.perf_counter()
            await asyncio.gather(
                *(table.create_entity({"PartitionKey": str(uuid.uuid4()), "RowKey": "x"}) for _ in range(count))
            )
            inserts = time.perf_counter() - started
            started = time.perf_counter()
            await asyncio.gather(*(queue.send_message("x") for _ in range(count)))
            sends = time.perf_counter() - started
    return inserts * 1000, sends * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--callouts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--in-process", action="store_true", help="run the dev host in this process (a thread)")
    args = parser.parse_args()
    with azurite() as storage, TenantServer(port=0, https_port=0) as tenant:
        settings = product_settings(tenant, storage.connection_string)
        token = genuine(tenant)
        if args.in_process:
            with DevHost(settings_file=None, settings=settings, port=0, run_queues=False) as host:
                latencies = asyncio.run(fire(f"{host.url}/api/callout", token, args.callouts, args.concurrency))
        else:
            with host_process(settings) as url:
                latencies = asyncio.run(fire(f"{url}/api/callout", token, args.callouts, args.concurrency))
        floor_inserts, floor_sends = asyncio.run(storage_floor(storage.connection_string, args.callouts))
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    print(f"callouts: {len(latencies)} at concurrency {args.concurrency}")
    print(f"ack p50 = {p50:.1f} ms  ({p50 / EM_BUDGET_MS:.3f} of EM's 1,000 ms)")
    print(f"ack p99 = {p99:.1f} ms  ({p99 / EM_BUDGET_MS:.3f} of EM's 1,000 ms; goal p99 ≤ 50 ms)")
    print(f"p99 / p50 = {p99 / p50:.2f}")
    print(f"for scale, {args.callouts} concurrent bare SDK calls into Azurite: inserts {floor_inserts:.0f} ms, "
          f"queue sends {floor_sends:.0f} ms (each callout needs one of each before its 202)")  # fmt: skip
    print(
        json.dumps({"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "p99_over_budget": round(p99 / EM_BUDGET_MS, 3)})
    )


if __name__ == "__main__":
    main()
