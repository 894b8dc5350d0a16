"""Clients the tests use to talk to the local tenant exactly as product code will: msgraph-sdk over
azure-identity's ManagedIdentityCredential."""

from __future__ import annotations

from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.native_response_handler import NativeResponseHandler  # noqa: F401  (re-exported for tests)
from msgraph import GraphServiceClient

from local.tenant import TenantServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def graph_client(tenant: TenantServer, client_id: str | None = None, version: str = "v1.0") -> GraphServiceClient:
    """A GraphServiceClient on the local tenant's Graph, authenticated by the real ManagedIdentityCredential.

    Needs the tenant's env (IDENTITY_ENDPOINT, IDENTITY_HEADER) in os.environ: use the tenant_env fixture.
    """
    credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
    client.request_adapter.base_url = f"{tenant.url}/{version}"
    return client
