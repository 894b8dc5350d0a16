"""The collaborators a worker process uses, built once from settings (tests build their own)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from store.callouts import CalloutStore
from store.clients import queue_client, table_service

from .caller_token import CallerVerifier, SigningKeys
from .settings import Settings, get_settings


@dataclass
class Container:
    settings: Settings
    callouts: CalloutStore
    verifier: CallerVerifier
    http: httpx.AsyncClient

    @classmethod
    def from_settings(cls, settings: Settings) -> Container:
        callouts = CalloutStore(
            table_service(settings),
            queue_client(settings, settings.work_queue),
            table_name=f"{settings.table_prefix}callouts",
        )
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        verifier = CallerVerifier(settings, SigningKeys(settings, http))
        return cls(settings=settings, callouts=callouts, verifier=verifier, http=http)

    async def close(self) -> None:
        await self.callouts.close()
        await self.http.aclose()


_container: Container | None = None


def get_container() -> Container:
    """This worker's container, created on first use (not at import: settings may arrive later)."""
    global _container
    if _container is None:
        _container = Container.from_settings(get_settings())
    return _container


def use_container(container: Container | None) -> None:
    """Make `container` this process's container (tests and the dev host point it at local services)."""
    global _container
    _container = container
