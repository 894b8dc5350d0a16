"""Conformance of the local tenant's ACS Email with Microsoft's documentation (Email - Send / Get Send Result,
api-version 2023-03-31; HMAC and Entra authentication; service limits), driven through azure-communication-email's
synchronous EmailClient: from a connection string (HMAC) and with azure-identity's ManagedIdentityCredential."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.communication.email import EmailClient
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential

from local.tenant import TenantServer
from tests.conftest import F

SENDER = "DoNotReply@contoso.local"
POLL = 0.05


def message(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "senderAddress": SENDER,
        "recipients": {
            "to": [{"address": "tom@contoso.local", "displayName": "Tom Target"}],
            "cc": [{"address": "megan@contoso.local"}],
        },
        "content": {
            "subject": "Your MFA reset was approved",
            "plainText": "Pick up your Temporary Access Pass.",
            "html": "<p>Pick up your <b>Temporary Access Pass</b>.</p>",
        },
    }
    body.update(changes)
    return body


def control(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    response = httpx.request(method, f"{tenant.url}/_control/acs/{path}", json=body)
    response.raise_for_status()
    return response


def messages(tenant: TenantServer) -> list[dict[str, Any]]:
    return control(tenant, "GET", "messages").json()


def hmac_client(tenant: TenantServer, key: str | None = None, **options: Any) -> EmailClient:
    key = key or tenant.state.fixture["acs"]["accessKey"]
    return EmailClient.from_connection_string(
        f"endpoint={tenant.https_url}/;accesskey={key}", connection_verify=str(tenant.ca_path), **options
    )


@pytest.fixture
def acs(tenant: TenantServer) -> TenantServer:
    """The tenant without the poll hint, so the poller waits POLL seconds and not the service's retry-after."""
    control(tenant, "PUT", "limits", {"retryAfterSeconds": 0})
    return tenant


@pytest.fixture
def client(acs: TenantServer) -> Iterator[EmailClient]:
    with hmac_client(acs, retry_total=0) as found:
        yield found


def refused(client: EmailClient, body: dict[str, Any], **kw: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        client.begin_send(body, polling_interval=POLL, **kw).result()
    return caught.value


# --- sending ----------------------------------------------------------------------------------------------


def test_a_connection_string_client_sends_and_the_message_is_recorded(acs: TenantServer, client: EmailClient):
    result = client.begin_send(message(), polling_interval=POLL).result()
    assert result["status"] == "Succeeded"
    assert result["error"] is None
    [sent] = messages(acs)
    assert sent["operationId"] == result["id"]
    assert sent["senderAddress"] == SENDER
    assert sent["subject"] == "Your MFA reset was approved"
    assert sent["recipients"]["to"] == ["tom@contoso.local"]
    assert sent["recipients"]["cc"] == ["megan@contoso.local"]
    assert sent["plainText"] == "Pick up your Temporary Access Pass."
    assert sent["html"] == "<p>Pick up your <b>Temporary Access Pass</b>.</p>"
    assert sent["auth"] == "hmac"


def test_a_managed_identity_client_sends_with_an_entra_token(tenant_env: TenantServer):
    control(tenant_env, "PUT", "limits", {"retryAfterSeconds": 0})
    with EmailClient(
        tenant_env.https_url, ManagedIdentityCredential(), connection_verify=str(tenant_env.ca_path), retry_total=0
    ) as client:
        result = client.begin_send(message(), polling_interval=POLL).result()
    assert result["status"] == "Succeeded"
    [sent] = messages(tenant_env)
    assert (sent["auth"], sent["appId"]) == ("entra", F.APP["func"][0])
    assert sent["subject"] == "Your MFA reset was approved"


def test_the_same_operation_id_twice_is_one_message(acs: TenantServer, client: EmailClient):
    operation_id = str(uuid.uuid4())
    first = client.begin_send(message(), operation_id=operation_id, polling_interval=POLL).result()
    second = client.begin_send(message(), operation_id=operation_id, polling_interval=POLL).result()
    assert first["id"] == second["id"] == operation_id
    assert second["status"] == "Succeeded"
    assert len(messages(acs)) == 1


# --- refusals ---------------------------------------------------------------------------------------------


def test_a_sender_domain_not_linked_to_the_resource_is_refused(acs: TenantServer, client: EmailClient):
    error = refused(client, message(senderAddress="DoNotReply@fabrikam.example"))
    # The reference documents no status for this; field reports show DomainNotLinked as a 4xx.
    assert 400 <= error.status_code < 500
    assert error.response.json()["error"]["code"] == "DomainNotLinked"
    assert messages(acs) == []


@pytest.mark.parametrize("recipients", [{"to": []}, {"cc": [{"address": "megan@contoso.local"}]}, None])
def test_a_message_without_to_recipients_is_400(
    acs: TenantServer, client: EmailClient, recipients: dict[str, Any] | None
):
    body = message(recipients=recipients)
    if recipients is None:
        del body["recipients"]
    error = refused(client, body)
    assert error.status_code == 400
    assert error.response.json()["error"]["code"]
    assert messages(acs) == []


def test_a_wrong_access_key_is_401(acs: TenantServer):
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LTAwMA=="
    with hmac_client(acs, key=wrong, retry_total=0) as client:
        error = refused(client, message())
    assert error.status_code == 401
    assert messages(acs) == []


def test_the_third_send_over_a_quota_of_two_per_minute_is_429_with_retry_after(acs: TenantServer, client: EmailClient):
    control(acs, "PUT", "limits", {"perMinute": 2})
    for _ in range(2):
        assert client.begin_send(message(), polling_interval=POLL).result()["status"] == "Succeeded"
    error = refused(client, message())
    assert error.status_code == 429
    assert int(error.response.headers["Retry-After"]) > 0
    assert len(messages(acs)) == 2


def test_an_injected_server_error_reaches_the_client(acs: TenantServer, client: EmailClient):
    control(acs, "POST", "fail-next", {"count": 1, "status": 500})
    error = refused(client, message())
    assert error.status_code == 500
    assert messages(acs) == []
    assert client.begin_send(message(), polling_interval=POLL).result()["status"] == "Succeeded"  # only once
    assert len(messages(acs)) == 1


def test_a_send_accepted_and_then_failed_surfaces_as_failed(acs: TenantServer, client: EmailClient):
    control(acs, "POST", "fail-next", {"count": 1, "status": "Failed"})
    poller = client.begin_send(message(), polling_interval=POLL)
    with pytest.raises(HttpResponseError):
        poller.result()  # azure-core's LRO raises on a terminal Failed status
    assert poller.status() == "Failed"
