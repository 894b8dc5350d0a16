"""ACS Email emulation driven through azure-communication-email's EmailClient (HMAC and Entra) and raw httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest.mock import ANY
from urllib.parse import urlsplit

import httpx
import pytest
from azure.communication.email import EmailClient
from azure.communication.email.aio import EmailClient as AsyncEmailClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from local.tenant import TenantServer
from tests.conftest import F

SCOPE = "https://communication.azure.com/.default"
VERSION = "2023-03-31"
SENDER = "DoNotReply@contoso.local"


def message(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": "megan@contoso.local", "displayName": "Megan Manager"}]},
        "content": {"subject": "MFA reset approved", "plainText": "Pick up the pass.", "html": "<p>Pick up</p>"},
    }
    body.update(changes)
    return body


def access_key(tenant: TenantServer) -> str:
    return tenant.state.fixture["acs"]["accessKey"]


def hmac_client(tenant: TenantServer, key: str | None = None) -> EmailClient:
    """The connection-string client, trusting the local CA, not retrying, polling without waiting."""
    connection = f"endpoint={tenant.https_url}/;accesskey={key or access_key(tenant)}"
    return EmailClient.from_connection_string(
        connection, connection_verify=str(tenant.ca_path), retry_total=0, polling_interval=0
    )


def tls(tenant: TenantServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tenant.ca_path))


def control(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{tenant.url}/_control/acs/{path}", json=body)


@pytest.fixture
def acs(tenant: TenantServer) -> TenantServer:
    """The tenant with the poll hint off, so pollers do not sleep a second per send."""
    control(tenant, "PUT", "limits", {"retryAfterSeconds": 0}).raise_for_status()
    return tenant


def messages(tenant: TenantServer) -> list[dict[str, Any]]:
    return control(tenant, "GET", "messages").json()


def signed(tenant: TenantServer, body: bytes, *, key: str | None = None, date: datetime | None = None) -> dict:
    """Headers per the documented HMAC scheme, computed here independently of the SDK."""
    path_and_query = f"/emails:send?api-version={VERSION}"
    host = urlsplit(tenant.https_url).netloc
    stamp = format_datetime(date or datetime.now(UTC), usegmt=True)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    to_sign = f"POST\n{path_and_query}\n{stamp};{host};{digest}".encode()
    secret = base64.b64decode(key or access_key(tenant))
    signature = base64.b64encode(hmac.new(secret, to_sign, hashlib.sha256).digest()).decode()
    return {
        "x-ms-date": stamp,
        "x-ms-content-sha256": digest,
        "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        "Content-Type": "application/json",
    }


def raw_send(tenant: TenantServer, headers: dict, body: bytes, version: str = VERSION) -> httpx.Response:
    return httpx.post(
        f"{tenant.https_url}/emails:send?api-version={version}", content=body, headers=headers, verify=tls(tenant)
    )


def entra_headers() -> dict[str, str]:
    token = ManagedIdentityCredential().get_token(SCOPE).token
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# --- sending through the SDK ------------------------------------------------------------------------------


def test_a_connection_string_client_sends_and_the_message_is_recorded(acs: TenantServer):
    result = hmac_client(acs).begin_send(message()).result()
    assert result["status"] == "Succeeded"
    assert result["error"] is None
    [sent] = messages(acs)
    assert sent["operationId"] == result["id"]
    assert sent["recipients"] == {"to": ["megan@contoso.local"], "cc": [], "bcc": []}
    assert sent["subject"] == "MFA reset approved"
    assert (sent["plainText"], sent["html"]) == ("Pick up the pass.", "<p>Pick up</p>")
    assert sent["status"] == "Succeeded"
    assert sent["auth"] == "hmac"


def test_a_managed_identity_client_sends_with_an_entra_token(tenant_env: TenantServer):
    control(tenant_env, "PUT", "limits", {"retryAfterSeconds": 0})
    client = EmailClient(
        tenant_env.https_url,
        ManagedIdentityCredential(),
        connection_verify=str(tenant_env.ca_path),
        retry_total=0,
        polling_interval=0,
    )
    result = client.begin_send(message()).result()
    assert result["status"] == "Succeeded"
    [sent] = messages(tenant_env)
    assert (sent["auth"], sent["appId"]) == ("entra", F.APP["func"][0])


async def test_the_async_client_signs_hmac_over_aiohttp_and_is_accepted(acs: TenantServer):
    credential = AzureKeyCredential(access_key(acs))
    async with AsyncEmailClient(
        acs.https_url, credential, connection_verify=str(acs.ca_path), retry_total=0, polling_interval=0
    ) as client:
        poller = await client.begin_send(message())
        result = await poller.result()
    assert result["status"] == "Succeeded"


async def test_the_async_client_with_an_async_managed_identity_is_accepted(tenant_env: TenantServer):
    control(tenant_env, "PUT", "limits", {"retryAfterSeconds": 0})
    async with (
        AsyncManagedIdentityCredential() as credential,
        AsyncEmailClient(
            tenant_env.https_url,
            credential,
            connection_verify=str(tenant_env.ca_path),
            retry_total=0,
            polling_interval=0,
        ) as client,
    ):
        result = await (await client.begin_send(message())).result()
    assert result["status"] == "Succeeded"


def test_cc_bcc_reply_to_headers_and_attachments_are_accepted_and_recorded(acs: TenantServer):
    full = message(
        recipients={
            "to": [{"address": "megan@contoso.local"}],
            "cc": [{"address": "dana@contoso.local"}],
            "bcc": [{"address": "audit@contoso.local"}],
        },
        headers={"x-mfa-reset-id": "r-1"},
        replyTo=[{"address": "helpdesk@contoso.local"}],
        attachments=[{"name": "a.txt", "contentType": "text/plain", "contentInBase64": "aGVsbG8="}],
        userEngagementTrackingDisabled=True,
    )
    assert hmac_client(acs).begin_send(full).result()["status"] == "Succeeded"
    [sent] = messages(acs)
    assert sent["recipients"]["cc"] == ["dana@contoso.local"]
    assert sent["recipients"]["bcc"] == ["audit@contoso.local"]
    assert sent["headers"] == {"x-mfa-reset-id": "r-1"}
    assert sent["replyTo"] == ["helpdesk@contoso.local"]
    assert sent["attachments"] == ["a.txt"]


# --- the operation ----------------------------------------------------------------------------------------


def test_send_answers_202_running_with_operation_location_operation_id_and_a_poll_hint(tenant_env: TenantServer):
    response = raw_send(tenant_env, entra_headers(), json.dumps(message()).encode())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "Running"
    assert response.headers["operation-id"] == body["id"]
    assert response.headers["retry-after"] == "1"
    location = response.headers["Operation-Location"]
    assert location == f"{tenant_env.https_url}/emails/operations/{body['id']}?api-version={VERSION}"
    status = httpx.get(location, headers=entra_headers(), verify=tls(tenant_env))
    assert status.json() == {"id": body["id"], "status": "Succeeded", "error": None}
    assert "retry-after" not in status.headers


def test_an_operation_still_running_says_so_with_retry_after_and_the_poller_waits_it_out(acs: TenantServer):
    control(acs, "PUT", "limits", {"pendingPolls": 2})
    poller = hmac_client(acs).begin_send(message())
    assert poller.result()["status"] == "Succeeded"
    control(acs, "PUT", "limits", {"pendingPolls": 1, "retryAfterSeconds": 5})
    response = raw_send(acs, signed(acs, b := json.dumps(message()).encode()), b)
    location = response.headers["Operation-Location"]
    path = urlsplit(location).path + "?" + urlsplit(location).query
    first = httpx.get(location, headers=_signed_get(acs, path), verify=tls(acs))
    assert (first.json()["status"], first.headers["retry-after"]) == ("Running", "5")
    second = httpx.get(location, headers=_signed_get(acs, path), verify=tls(acs))
    assert second.json()["status"] == "Succeeded"


def _signed_get(tenant: TenantServer, path_and_query: str) -> dict[str, str]:
    stamp = format_datetime(datetime.now(UTC), usegmt=True)
    digest = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    host = urlsplit(tenant.https_url).netloc
    to_sign = f"GET\n{path_and_query}\n{stamp};{host};{digest}".encode()
    signature = base64.b64encode(hmac.new(base64.b64decode(access_key(tenant)), to_sign, hashlib.sha256).digest())
    return {
        "x-ms-date": stamp,
        "x-ms-content-sha256": digest,
        "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature.decode()}",
    }


def test_an_unknown_operation_id_is_404(tenant_env: TenantServer):
    url = f"{tenant_env.https_url}/emails/operations/{uuid.uuid4()}?api-version={VERSION}"
    response = httpx.get(url, headers=entra_headers(), verify=tls(tenant_env))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == response.headers["x-ms-error-code"] == "NotFound"


def test_the_same_operation_id_is_one_operation_and_one_message(acs: TenantServer):
    client = hmac_client(acs)
    operation_id = str(uuid.uuid4())
    first = client.begin_send(message(), operation_id=operation_id).result()
    second = client.begin_send(message(), operation_id=operation_id).result()
    assert first["id"] == second["id"] == operation_id
    assert len(messages(acs)) == 1


def test_an_operation_id_that_is_not_a_guid_is_400(acs: TenantServer):
    with pytest.raises(HttpResponseError) as caught:
        hmac_client(acs).begin_send(message(), operation_id="not-a-guid")
    assert caught.value.status_code == 400


def test_an_injected_delivery_failure_ends_the_operation_failed_with_email_dropped(acs: TenantServer):
    control(acs, "POST", "fail-next", {"count": 1, "status": "Failed"})
    poller = hmac_client(acs).begin_send(message())
    with pytest.raises(HttpResponseError) as caught:
        poller.result()  # azure-core's poller raises on a Failed operation, carrying its error
    assert caught.value.error.code == "EmailDropped"
    [sent] = messages(acs)
    assert sent["status"] == "Failed"
    url = f"{acs.https_url}/emails/operations/{sent['operationId']}?api-version={VERSION}"
    path = urlsplit(url).path + "?" + urlsplit(url).query
    body = httpx.get(url, headers=_signed_get(acs, path), verify=tls(acs)).json()
    assert body == {"id": sent["operationId"], "status": "Failed", "error": {"code": "EmailDropped", "message": ANY}}


def test_an_injected_500_surfaces_to_the_client_and_the_next_send_succeeds(acs: TenantServer):
    control(acs, "POST", "fail-next", {"count": 1, "status": 500})
    client = hmac_client(acs)
    with pytest.raises(HttpResponseError) as caught:
        client.begin_send(message())
    assert caught.value.status_code == 500
    assert client.begin_send(message()).result()["status"] == "Succeeded"
    assert len(messages(acs)) == 1


# --- validation -------------------------------------------------------------------------------------------


def test_a_sender_outside_the_linked_domains_is_domain_not_linked_and_nothing_is_sent(acs: TenantServer):
    with pytest.raises(ResourceNotFoundError) as caught:
        hmac_client(acs).begin_send(message(senderAddress="DoNotReply@fabrikam.example"))
    assert caught.value.error.code == "DomainNotLinked"
    assert messages(acs) == []


BAD_BODIES = {
    "no sender": message(senderAddress=None),
    "sender not an address": message(senderAddress="DoNotReply"),
    "no recipients": message(recipients=None),
    "empty to": message(recipients={"to": []}),
    "only cc": message(recipients={"cc": [{"address": "a@contoso.local"}]}),
    "recipient without address": message(recipients={"to": [{"displayName": "x"}]}),
    "invalid recipient address": message(recipients={"to": [{"address": "not an address"}]}),
    "51 recipients": message(
        recipients={
            "to": [{"address": f"u{i}@contoso.local"} for i in range(40)],
            "bcc": [{"address": f"b{i}@contoso.local"} for i in range(11)],
        }
    ),
    "no content": message(content=None),
    "no subject": message(content={"plainText": "x"}),
    "blank subject": message(content={"subject": "  ", "plainText": "x"}),
    "neither plainText nor html": message(content={"subject": "s"}),
    "headers not strings": message(headers={"x-count": 3}),
    "attachment not base64": message(
        attachments=[{"name": "a", "contentType": "text/plain", "contentInBase64": "***"}]
    ),
    "attachment without name": message(attachments=[{"contentType": "text/plain", "contentInBase64": "aGk="}]),
    "tracking flag not boolean": message(userEngagementTrackingDisabled="yes"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_an_invalid_email_message_is_400_with_the_acs_error_envelope(tenant_env: TenantServer, case: str):
    response = raw_send(tenant_env, entra_headers(), json.dumps(BAD_BODIES[case]).encode())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert response.headers["x-ms-error-code"] == error["code"] == "BadRequest"
    assert control(tenant_env, "GET", "messages").json() == []


def test_fifty_recipients_are_allowed(tenant_env: TenantServer):
    body = message(recipients={"to": [{"address": f"u{i}@contoso.local"} for i in range(50)]})
    assert raw_send(tenant_env, entra_headers(), json.dumps(body).encode()).status_code == 202


def test_a_body_that_is_not_json_is_400(tenant_env: TenantServer):
    assert raw_send(tenant_env, entra_headers(), b"{not json").status_code == 400


def test_a_missing_or_unknown_api_version_is_400(tenant_env: TenantServer):
    body = json.dumps(message()).encode()
    assert raw_send(tenant_env, entra_headers(), body, version="1999-01-01").status_code == 400
    response = httpx.post(
        f"{tenant_env.https_url}/emails:send", content=body, headers=entra_headers(), verify=tls(tenant_env)
    )
    assert response.status_code == 400


# --- authentication ---------------------------------------------------------------------------------------


def test_a_request_signed_per_the_documented_hmac_scheme_is_accepted(acs: TenantServer):
    body = json.dumps(message()).encode()
    assert raw_send(acs, signed(acs, body), body).status_code == 202


def test_a_client_with_the_wrong_access_key_gets_401(acs: TenantServer):
    wrong = base64.b64encode(b"another-resource-key-0123456789abcdef").decode()
    with pytest.raises(ClientAuthenticationError) as caught:
        hmac_client(acs, key=wrong).begin_send(message())
    assert caught.value.status_code == 401
    assert messages(acs) == []


def _tampered(tenant: TenantServer, how: str) -> tuple[dict, bytes]:
    body = json.dumps(message()).encode()
    if how == "body changed after signing":
        return signed(tenant, body), json.dumps(message(senderAddress="ceo@contoso.local")).encode()
    if how == "date 20 minutes old":
        return signed(tenant, body, date=datetime.now(UTC) - timedelta(minutes=20)), body
    headers = signed(tenant, body)
    if how == "other signed headers":
        headers["Authorization"] = headers["Authorization"].replace("x-ms-date;host;", "host;x-ms-date;")
    elif how == "no date header":
        del headers["x-ms-date"]
    elif how == "no authorization":
        del headers["Authorization"]
    elif how == "host not the one signed":
        headers["Host"] = "contoso.communication.azure.com"
    return headers, body


@pytest.mark.parametrize(
    "how",
    [
        "body changed after signing",
        "date 20 minutes old",
        "other signed headers",
        "no date header",
        "no authorization",
        "host not the one signed",
    ],
)
def test_a_request_whose_hmac_does_not_verify_is_401_denied(acs: TenantServer, how: str):
    headers, body = _tampered(acs, how)
    response = raw_send(acs, headers, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Denied"
    if how == "body changed after signing":
        assert "x-ms-content-sha256" in response.json()["error"]["message"]
    assert messages(acs) == []


def test_a_token_for_another_audience_is_401(tenant_env: TenantServer):
    token = ManagedIdentityCredential().get_token("https://graph.microsoft.com/.default").token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert raw_send(tenant_env, headers, json.dumps(message()).encode()).status_code == 401


# --- quota ------------------------------------------------------------------------------------------------


def test_the_default_limits_are_thirty_per_minute_and_one_hundred_per_hour(tenant_env: TenantServer):
    limits = control(tenant_env, "GET", "limits").json()
    assert (limits["perMinute"], limits["perHour"]) == (30, 100)
    headers = entra_headers()
    body = json.dumps(message()).encode()
    with httpx.Client(verify=tls(tenant_env)) as client:
        url = f"{tenant_env.https_url}/emails:send?api-version={VERSION}"
        statuses = [client.post(url, content=body, headers=headers).status_code for _ in range(31)]
    assert statuses == [202] * 30 + [429]


def test_over_the_minute_quota_the_client_gets_429_with_retry_after_until_the_minute_passes(acs: TenantServer):
    control(acs, "PUT", "limits", {"perMinute": 2})
    client = hmac_client(acs)
    for _ in range(2):
        client.begin_send(message()).result()
    with pytest.raises(HttpResponseError) as caught:
        client.begin_send(message())
    assert caught.value.status_code == 429
    assert caught.value.error.code == "TooManyRequests"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60
    httpx.post(f"{acs.url}/_control/clock", json={"advanceSeconds": 61}).raise_for_status()
    assert client.begin_send(message()).result()["status"] == "Succeeded"
    assert len(messages(acs)) == 3


def test_over_the_hour_quota_a_new_minute_is_not_enough(acs: TenantServer):
    control(acs, "PUT", "limits", {"perHour": 1})
    client = hmac_client(acs)
    client.begin_send(message()).result()
    httpx.post(f"{acs.url}/_control/clock", json={"advanceSeconds": 120}).raise_for_status()
    with pytest.raises(HttpResponseError) as caught:
        client.begin_send(message())
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) > 60
    httpx.post(f"{acs.url}/_control/clock", json={"advanceSeconds": 3600}).raise_for_status()
    assert client.begin_send(message()).result()["status"] == "Succeeded"


def test_an_injected_429_carries_retry_after(acs: TenantServer):
    control(acs, "POST", "fail-next", {"count": 1, "status": 429, "retryAfter": 7})
    with pytest.raises(HttpResponseError) as caught:
        hmac_client(acs).begin_send(message())
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"


# --- control ----------------------------------------------------------------------------------------------


def test_deleting_the_messages_empties_the_mailbox_and_the_quota_window(acs: TenantServer):
    control(acs, "PUT", "limits", {"perMinute": 1})
    client = hmac_client(acs)
    client.begin_send(message()).result()
    assert control(acs, "DELETE", "messages").status_code == 204
    assert messages(acs) == []
    assert client.begin_send(message()).result()["status"] == "Succeeded"


def test_limits_refuse_negative_numbers(acs: TenantServer):
    assert control(acs, "PUT", "limits", {"perMinute": -1}).status_code == 400
