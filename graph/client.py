"""Builds the Graph client from settings: managed identity, the configured Graph root, token sent only there."""

from __future__ import annotations

from urllib.parse import urlparse

from azure.identity.aio import ManagedIdentityCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient

from extensions.settings import Settings


def graph_client(settings: Settings, credential: ManagedIdentityCredential | None = None) -> GraphServiceClient:
    """A GraphServiceClient whose bearer token goes to the configured Graph host and nowhere else."""
    credential = credential or ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    host = urlparse(settings.graph_base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[settings.graph_scope], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = settings.graph_base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
