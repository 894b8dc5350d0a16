"""Requests per second of our Graph layer (graph.raw over msgraph-sdk's adapter), msgraph-sdk's typed path,
and plain httpx, against the same local-tenant endpoint in one run; prints the ratios.

    .venv/bin/python -m bench.graph_layer [--requests 600] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx
from azure.identity.aio import ManagedIdentityCredential

from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller
from local.tenant import TenantServer
from local.tenant.fixtures.make_default import U


async def rate(name: str, call, requests: int, concurrency: int) -> float:
    for _ in range(20):  # warm up: first-use imports, token, connections
        await call()
    queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)

    async def worker():
        while not queue.empty():
            queue.get_nowait()
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    per_second = requests / elapsed
    print(f"{name:<28} {per_second:8.0f} req/s")
    return per_second


async def main(requests: int, concurrency: int) -> None:
    with TenantServer(port=0, https_port=0) as tenant:
        for key, value in tenant.env().items():
            os.environ[key] = value
        user = U["tom"]
        settings = Settings(GRAPH_BASE_URL=tenant.graph_url)
        async with ManagedIdentityCredential() as credential:
            token = (await credential.get_token("https://graph.microsoft.com/.default")).token
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:

            async def plain():
                (await http.get(f"{tenant.graph_url}/users/{user}")).raise_for_status()

            baseline = await rate("plain httpx", plain, requests, concurrency)
        caller = GraphCaller(graph_client(settings))

        async def ours():
            await caller.json("GET", f"/users/{user}")

        layer = await rate("graph.raw (our layer)", ours, requests, concurrency)
        client = graph_client(settings)

        async def typed():
            await client.users.by_user_id(user).get()

        typed_rate = await rate("msgraph-sdk typed models", typed, max(requests // 4, 50), concurrency)
        print(f"\nour layer / httpx  = {layer / baseline:.2f}  (goal ≥ 0.50)")
        print(f"typed SDK / httpx  = {typed_rate / baseline:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
