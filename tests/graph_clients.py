"""Clients the tests use to talk to the local tenant exactly as product code does: graph.client's
GraphServiceClient over azure-identity's ManagedIdentityCredential."""

from __future__ import annotations

from kiota_abstractions.native_response_handler import NativeResponseHandler  # noqa: F401  (re-exported for tests)
from msgraph import GraphServiceClient

from extensions.settings import Settings
from graph.client import graph_client as product_graph_client
from local.tenant import TenantServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def graph_client(tenant: TenantServer, client_id: str | None = None, version: str = "v1.0") -> GraphServiceClient:
    """The product's Graph client pointed at the local tenant (v1.0 or beta), as identity `client_id`.

    Needs the tenant's env (IDENTITY_ENDPOINT, IDENTITY_HEADER) in os.environ: use the tenant_env fixture.
    """
    settings = Settings(GRAPH_BASE_URL=f"{tenant.url}/{version}", MANAGED_IDENTITY_CLIENT_ID=client_id or "")
    return product_graph_client(settings)
