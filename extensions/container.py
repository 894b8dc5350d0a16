"""The collaborators a worker process uses, built once from settings (tests build their own)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from graph.client import graph_client
from graph.directory import Directory
from graph.entitlement import Entitlement
from graph.methods import Methods
from graph.raw import GraphCaller
from notify import Notifier
from notify.factory import build_notifier, teams_transport
from notify.teams import TeamsBot
from store.callouts import CalloutStore
from store.clients import queue_client, table_service
from store.pickups import PickupStore
from store.records import ResetStore
from store.tables import Tables

from .bot_token import ChannelKeys, ChannelVerifier
from .caller_token import CallerVerifier, SigningKeys
from .settings import Settings, get_settings
from .telemetry import configure
from .workflow import Workflow


@dataclass
class Container:
    settings: Settings
    callouts: CalloutStore
    verifier: CallerVerifier
    http: httpx.AsyncClient
    tables: Tables
    resets: ResetStore
    pickups: PickupStore
    graph: GraphCaller
    notifier: Notifier
    workflow: Workflow
    channel_verifier: ChannelVerifier  # the Bot Connector's tokens on /api/messages
    bot: TeamsBot | None  # the notifier's Teams transport, which answers users who write to the bot

    @classmethod
    def from_settings(cls, settings: Settings, notifier: Notifier | None = None) -> Container:
        callouts = CalloutStore(
            table_service(settings),
            queue_client(settings, settings.work_queue),
            table_name=f"{settings.table_prefix}callouts",
        )
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        verifier = CallerVerifier(settings, SigningKeys(settings, http))
        tables = Tables(table_service(settings), settings.table_prefix)
        resets = ResetStore(tables)
        pickups = PickupStore(tables)
        graph = GraphCaller(graph_client(settings))
        # The real transports when settings enable them; a RecordingNotifier otherwise (and for pure units).
        notifier = notifier or build_notifier(settings, graph, resets)
        workflow = Workflow(settings, Directory(graph), Methods(graph), Entitlement(graph), resets, pickups, notifier)
        channel_verifier = ChannelVerifier(settings, ChannelKeys(settings.teams_bot_openid_metadata_url, http))
        return cls(
            settings,
            callouts,
            verifier,
            http,
            tables,
            resets,
            pickups,
            graph,
            notifier,
            workflow,
            channel_verifier,
            teams_transport(notifier),
        )

    async def close(self) -> None:
        close_notifier = getattr(self.notifier, "close", None)
        if close_notifier is not None:
            await close_notifier()
        await self.callouts.close()
        await self.tables.close()
        await self.http.aclose()


_container: Container | None = None


def get_container() -> Container:
    """This worker's container, created on first use (not at import: settings may arrive later)."""
    global _container
    if _container is None:
        configure()
        _container = Container.from_settings(get_settings())
    return _container


def use_container(container: Container | None) -> None:
    """Make `container` this process's container (tests and the dev host point it at local services)."""
    global _container
    _container = container
