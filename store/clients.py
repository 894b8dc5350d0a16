"""Table and queue clients from settings: a connection string locally, the managed identity in Azure.

Identity-based connections follow the Functions convention (AzureWebJobsStorage__accountName or
__tableServiceUri/__queueServiceUri, __clientId): https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
"""

from __future__ import annotations

from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import ManagedIdentityCredential
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from extensions.settings import Settings

from .errors import StorageNotConfigured

# What "UseDevelopmentStorage=true" means: Azurite's well-known account on its default ports.
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def connection_string(settings: Settings) -> str | None:
    value = settings.storage_connection_string
    if value and value.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        return DEVELOPMENT_STORAGE
    return value or None


def _service_uri(settings: Settings, explicit: str | None, service: str) -> str:
    if explicit:
        return explicit
    if settings.storage_account_name:
        return f"https://{settings.storage_account_name}.{service}.core.windows.net"
    raise StorageNotConfigured(
        "set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName (managed identity)"
    )


def table_service(settings: Settings) -> TableServiceClient:
    conn = connection_string(settings)
    if conn:
        return TableServiceClient.from_connection_string(conn)
    uri = _service_uri(settings, settings.storage_table_uri, "table")
    return TableServiceClient(uri, credential=ManagedIdentityCredential(client_id=settings.storage_client_id))


def queue_client(settings: Settings, queue_name: str) -> QueueClient:
    """A client for one queue. Messages are base64 as host.json's messageEncoding says, so the queue trigger
    decodes what we send (the service client does not pass encoding policies on to its queue clients)."""
    codecs = {"message_encode_policy": BinaryBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}
    conn = connection_string(settings)
    if conn:
        return QueueClient.from_connection_string(conn, queue_name, **codecs)
    uri = _service_uri(settings, settings.storage_queue_uri, "queue")
    credential = ManagedIdentityCredential(client_id=settings.storage_client_id)
    return QueueClient(uri, queue_name, credential=credential, **codecs)
