"""Lazily created tables under one prefix, shared by the record stores."""

from __future__ import annotations

import asyncio

from azure.data.tables.aio import TableClient, TableServiceClient


class Tables:
    """`await tables.get("resets")` → the `<prefix>resets` table client, created on first use."""

    def __init__(self, service: TableServiceClient, prefix: str):
        self._service = service
        self._prefix = prefix
        self._clients: dict[str, TableClient] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> TableClient:
        client = self._clients.get(name)
        if client is None:
            async with self._lock:
                client = self._clients.get(name)
                if client is None:
                    await self._service.create_table_if_not_exists(f"{self._prefix}{name}")
                    client = self._service.get_table_client(f"{self._prefix}{name}")
                    self._clients[name] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()
