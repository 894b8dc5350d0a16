"""A DeliveringNotifier built from settings the way the container builds it, pointed at the local tenant's ACS,
Bot Connector and Workflows webhook stand-ins, auditing into Azurite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from azure.data.tables.aio import TableServiceClient
from pydantic import SecretStr

from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller
from local.tenant import TenantServer
from notify.delivering import DeliveringNotifier
from notify.factory import build_notifier
from store.records import ResetStore
from store.tables import Tables
from tests.conftest import F
from tests.e2e.conftest import stack  # noqa: F401 (the e2e stack fixture, for test_notify_flow.py)

SENDER = "DoNotReply@contoso.local"
WEBHOOK_SECRET = "sig-0123456789abcdef"


def notify_settings(tenant: TenantServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "TENANT_ID": tenant.state.tenant_id,
        "GRAPH_BASE_URL": tenant.graph_url,
        "NOTIFY_EMAIL_ENABLED": True,
        "NOTIFY_TEAMS_ENABLED": True,
        "NOTIFY_CHANNEL_ENABLED": True,
        "ACS_ENDPOINT": tenant.https_url,
        "ACS_SENDER_ADDRESS": SENDER,
        "NOTIFY_CA_BUNDLE": str(tenant.ca_path),
        "TEAMS_BOT_APP_ID": F.APP["func"][0],
        "TEAMS_BOT_SERVICE_URL": f"{tenant.url}/botframework/",
        "TEAMS_APP_CATALOG_ID": F.TEAMS_APP,
        "TEAMS_CHANNEL_WEBHOOK_URL": f"{tenant.url}/webhooks/reset-channel?sp=triggers&sig={WEBHOOK_SECRET}",
        "NOTIFY_RETRY_BASE_SECONDS": 0.05,
        "NOTIFY_BUDGET_SECONDS": 5,
    }
    values.update(overrides)
    return Settings(**values)


class Sinks:
    """What the local tenant's stand-ins received, read through their control API."""

    def __init__(self, tenant: TenantServer):
        self.tenant = tenant

    def emails(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.tenant.url}/_control/acs/messages").json()

    def activities(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.tenant.url}/_control/bot/activities").json()

    def cards(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.tenant.url}/_control/webhooks/reset-channel").json()

    def everything(self) -> str:
        """Every byte any transport delivered, as one string to search."""
        return repr((self.emails(), self.activities(), self.cards()))

    def control(self, method: str, path: str, body: Any = None) -> None:
        httpx.request(method, f"{self.tenant.url}/_control/{path}", json=body).raise_for_status()


@pytest.fixture
def sinks(tenant_env: TenantServer) -> Sinks:
    found = Sinks(tenant_env)
    found.control("PUT", "acs/limits", {"retryAfterSeconds": 0})  # the poller does not wait a second per mail
    return found


@pytest.fixture
async def resets(azurite) -> AsyncIterator[ResetStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    tables = Tables(service, f"n{uuid.uuid4().hex[:8]}")
    yield ResetStore(tables)
    await tables.close()


@pytest.fixture
async def make_notifier(tenant_env: TenantServer, resets: ResetStore) -> AsyncIterator:
    """Builds notifiers from settings overrides; closes them after the test."""
    built: list[DeliveringNotifier] = []

    def make(**overrides: Any) -> DeliveringNotifier:
        settings = notify_settings(tenant_env, **overrides)
        notifier = build_notifier(settings, GraphCaller(graph_client(settings)), resets)
        assert isinstance(notifier, DeliveringNotifier)
        built.append(notifier)
        return notifier

    yield make
    for notifier in built:
        await notifier.close()


def set_notify_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Put every notification setting (transports, ACS, Teams) into the environment the dev host reads, secrets in
    clear (SecretStr prints as stars)."""
    for field, info in type(settings).model_fields.items():
        if field.startswith(("notify_", "acs_", "teams_")):
            value = getattr(settings, field)
            monkeypatch.setenv(info.alias, value.get_secret_value() if isinstance(value, SecretStr) else str(value))
