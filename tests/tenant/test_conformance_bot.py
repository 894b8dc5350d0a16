"""Conformance of the local tenant's Bot Connector, Teams app installation and Workflows webhook with Microsoft's
documentation: Bot Connector REST v3 called with raw httpx and a managed-identity token for
https://api.botframework.com (as product code calls it), installation through msgraph-sdk's typed model, and the
"When a Teams webhook request is received" trigger."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation

from local.tenant import TenantServer
from tests.conftest import F
from tests.graph_clients import graph_client

BOT_SCOPE = "https://api.botframework.com/.default"
CATALOG_BIND = "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def card(text: str = "Megan asked to reset your MFA.") -> dict[str, Any]:
    return {
        "contentType": CARD_TYPE,
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        },
    }


async def bot_token(scope: str = BOT_SCOPE, client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(scope)).token


async def connector(tenant: TenantServer, path: str, body: Any, token: str | None = None) -> httpx.Response:
    """POST {serviceUrl}v3/... with a bearer, as product code will."""
    headers = {"Authorization": f"Bearer {token or await bot_token()}"}
    async with httpx.AsyncClient(base_url=f"{tenant.url}/botframework/", headers=headers, timeout=10) as client:
        return await client.post(path, json=body)


def conversation_parameters(tenant: TenantServer, user_id: str) -> dict[str, Any]:
    return {
        "bot": {"id": f"28:{F.APP['func'][0]}"},
        "isGroup": False,
        "members": [{"id": user_id}],
        "tenantId": tenant.state.tenant_id,
        "channelData": {"tenant": {"id": tenant.state.tenant_id}},
    }


def activities(tenant: TenantServer) -> list[dict[str, Any]]:
    return httpx.get(f"{tenant.url}/_control/bot/activities").json()


def installation() -> UserScopeTeamsAppInstallation:
    return UserScopeTeamsAppInstallation(additional_data={"teamsApp@odata.bind": CATALOG_BIND + F.TEAMS_APP})


# --- Bot Connector ------------------------------------------------------------------------------------------


async def test_a_one_on_one_conversation_with_an_installed_user_carries_an_adaptive_card(tenant_env: TenantServer):
    created = await connector(tenant_env, "v3/conversations", conversation_parameters(tenant_env, F.U["megan"]))
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    assert conversation_id
    activity = {"type": "message", "summary": "MFA reset request", "attachments": [card()]}
    sent = await connector(tenant_env, f"v3/conversations/{conversation_id}/activities", activity)
    assert sent.status_code == 201, sent.text
    [recorded] = activities(tenant_env)
    assert recorded["id"] == sent.json()["id"]  # ResourceResponse {id}
    assert (recorded["conversation"], recorded["recipient"]) == (conversation_id, F.U["megan"])
    assert recorded["attachments"][0]["contentType"] == CARD_TYPE
    assert recorded["attachments"][0]["content"]["body"][0]["text"] == "Megan asked to reset your MFA."


async def test_a_user_without_the_app_is_403_bot_not_in_conversation_roster(tenant_env: TenantServer):
    response = await connector(tenant_env, "v3/conversations", conversation_parameters(tenant_env, F.U["tom"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "BotNotInConversationRoster"
    assert httpx.get(f"{tenant_env.url}/_control/bot/conversations").json() == {}


@pytest.mark.parametrize(
    ("scope", "client_id"),
    [
        ("https://graph.microsoft.com/.default", None),  # the right identity, another audience
        ("https://communication.azure.com/.default", None),
        (BOT_SCOPE, F.APP["limited"][0]),  # the right audience, not the bot's identity
    ],
)
async def test_a_token_that_is_not_the_bots_for_the_connector_is_401(
    tenant_env: TenantServer, scope: str, client_id: str | None
):
    token = await bot_token(scope, client_id)
    response = await connector(tenant_env, "v3/conversations", conversation_parameters(tenant_env, F.U["megan"]), token)
    assert response.status_code == 401
    assert activities(tenant_env) == []


async def test_an_activity_without_a_bearer_is_401(tenant_env: TenantServer):
    async with httpx.AsyncClient(base_url=f"{tenant_env.url}/botframework/") as client:
        response = await client.post("v3/conversations", json=conversation_parameters(tenant_env, F.U["megan"]))
    assert response.status_code == 401


# --- installing the Teams app ---------------------------------------------------------------------------------


def test_the_typed_installation_model_serialises_the_documented_bind():
    writer = JsonSerializationWriter()
    writer.write_object_value(None, installation())
    body = json.loads(writer.get_serialized_content())
    assert body["teamsApp@odata.bind"] == CATALOG_BIND + F.TEAMS_APP
    assert set(body) <= {"teamsApp@odata.bind", "@odata.type"}


async def test_installing_the_app_through_the_typed_sdk_lets_the_bot_reach_the_user(tenant_env: TenantServer):
    tom = F.U["tom"]
    graph = graph_client(tenant_env)
    assert await graph.users.by_user_id(tom).teamwork.installed_apps.post(installation()) is None  # 201, no body
    created = await connector(tenant_env, "v3/conversations", conversation_parameters(tenant_env, tom))
    assert created.status_code == 201, created.text
    activity = {"type": "message", "attachments": [card("Your pass is ready.")]}
    sent = await connector(tenant_env, f"v3/conversations/{created.json()['id']}/activities", activity)
    assert sent.status_code == 201
    assert activities(tenant_env)[-1]["recipient"] == tom


async def test_installing_the_app_twice_is_409(tenant_env: TenantServer):
    installed = graph_client(tenant_env).users.by_user_id(F.U["tom"]).teamwork.installed_apps
    await installed.post(installation())
    with pytest.raises(ODataError) as caught:
        await installed.post(installation())
    assert caught.value.response_status_code == 409


# --- Workflows webhook ----------------------------------------------------------------------------------------


def hook(tenant: TenantServer, name: str) -> str:
    return f"{tenant.url}/webhooks/{name}"


def hook_payloads(tenant: TenantServer, name: str) -> list[dict[str, Any]]:
    return httpx.get(f"{tenant.url}/_control/webhooks/{name}").json()


def test_a_valid_workflows_payload_is_202_and_listed(tenant: TenantServer):
    payload = {"type": "message", "attachments": [card("TAP issued for Tom.")]}
    response = httpx.post(hook(tenant, "helpdesk"), json=payload)
    assert response.status_code == 202
    assert hook_payloads(tenant, "helpdesk") == [payload]
    assert hook_payloads(tenant, "other") == []


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        json.dumps({"text": "a Teams connector MessageCard-style body"}).encode(),
        json.dumps({"type": "message", "attachments": []}).encode(),
        json.dumps({"type": "message", "attachments": [{"contentType": "text/plain", "content": "x"}]}).encode(),
        json.dumps({"type": "message", "attachments": [{"contentType": CARD_TYPE, "content": {"body": []}}]}).encode(),
    ],
)
def test_a_malformed_payload_is_400_and_not_listed(tenant: TenantServer, content: bytes):
    response = httpx.post(hook(tenant, "helpdesk"), content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"]
    assert hook_payloads(tenant, "helpdesk") == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_an_injected_failure_answers_that_status_once(tenant: TenantServer, status: int):
    httpx.put(f"{tenant.url}/_control/webhooks/helpdesk/fail", json={"status": status}).raise_for_status()
    payload = {"type": "message", "attachments": [card()]}
    failed = httpx.post(hook(tenant, "helpdesk"), json=payload)
    assert failed.status_code == status
    assert hook_payloads(tenant, "helpdesk") == []
    assert httpx.post(hook(tenant, "helpdesk"), json=payload).status_code == 202
    assert len(hook_payloads(tenant, "helpdesk")) == 1
