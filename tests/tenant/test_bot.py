"""Bot Connector (httpx with a managed-identity token, as product code calls it), the Teams app install through
msgraph-sdk (typed and raw), and the Workflows webhook sink."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation
from msgraph.generated.users.item.teamwork.installed_apps.installed_apps_request_builder import (
    InstalledAppsRequestBuilder,
)

from local.tenant import TenantServer
from tests.conftest import F
from tests.graph_clients import graph_client

BOT_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CATALOG = "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/"


async def token(scope: str, client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(scope)).token


def service_url(tenant: TenantServer) -> str:
    return tenant.url + "/botframework/"


def card(text: str = "Your MFA reset was approved.") -> dict[str, Any]:
    return {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        },
    }


def parameters(tenant: TenantServer, user_id: str, **changes: Any) -> dict[str, Any]:
    body = {
        "bot": {"id": f"28:{F.APP['func'][0]}"},
        "members": [{"id": user_id}],
        "isGroup": False,
        "tenantId": tenant.state.tenant_id,
        "channelData": {"tenant": {"id": tenant.state.tenant_id}},
    }
    body.update(changes)
    return body


async def bot_post(tenant: TenantServer, path: str, body: Any, bearer: str | None = None) -> httpx.Response:
    bearer = bearer if bearer is not None else await token(BOT_SCOPE)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with httpx.AsyncClient() as client:
        return await client.post(service_url(tenant) + path, json=body, headers=headers)


async def conversation(tenant: TenantServer, user_id: str) -> str:
    response = await bot_post(tenant, "v3/conversations", parameters(tenant, user_id))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def activities(tenant: TenantServer) -> list[dict[str, Any]]:
    return httpx.get(f"{tenant.url}/_control/bot/activities").json()


def installation() -> UserScopeTeamsAppInstallation:
    return UserScopeTeamsAppInstallation(additional_data={"teamsApp@odata.bind": CATALOG + F.TEAMS_APP})


def external_id(tenant: TenantServer) -> str:
    return tenant.state.fixture["teamsApps"][0]["externalId"]


# --- Bot Connector ----------------------------------------------------------------------------------------


async def test_the_bot_creates_a_one_on_one_conversation_and_sends_an_adaptive_card(tenant_env: TenantServer):
    conversation_id = await conversation(tenant_env, F.U["megan"])
    assert conversation_id.startswith("a:")
    activity = {"type": "message", "text": "MFA reset", "attachments": [card()]}
    response = await bot_post(tenant_env, f"v3/conversations/{conversation_id}/activities", activity)
    assert response.status_code == 201
    [sent] = activities(tenant_env)
    assert sent["id"] == response.json()["id"]
    assert (sent["conversation"], sent["recipient"], sent["text"]) == (conversation_id, F.U["megan"], "MFA reset")
    assert sent["attachments"][0]["content"]["body"][0]["text"] == "Your MFA reset was approved."


async def test_creating_the_conversation_again_returns_the_same_one(tenant_env: TenantServer):
    assert await conversation(tenant_env, F.U["megan"]) == await conversation(tenant_env, F.U["megan"])
    assert await conversation(tenant_env, F.U["megan"]) != await conversation(tenant_env, F.U["sam"])


async def test_members_may_be_named_by_orgid_or_aad_object_id(tenant_env: TenantServer):
    by_orgid = parameters(tenant_env, f"8:orgid:{F.U['megan']}")
    by_object = parameters(tenant_env, "", members=[{"aadObjectId": F.U["megan"]}])
    first = await bot_post(tenant_env, "v3/conversations", by_orgid)
    second = await bot_post(tenant_env, "v3/conversations", by_object)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]


async def test_an_initial_activity_is_delivered_with_the_conversation(tenant_env: TenantServer):
    body = parameters(tenant_env, F.U["megan"], activity={"type": "message", "attachments": [card()]})
    response = await bot_post(tenant_env, "v3/conversations", body)
    assert response.status_code == 201
    assert response.json()["activityId"] == activities(tenant_env)[0]["id"]


async def test_a_user_without_the_app_is_refused_until_graph_installs_it(tenant_env: TenantServer):
    tom = F.U["tom"]
    refused = await bot_post(tenant_env, "v3/conversations", parameters(tenant_env, tom))
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "BotNotInConversationRoster",
        "message": "The bot is not part of the conversation roster.",
    }
    graph = graph_client(tenant_env)
    assert await graph.users.by_user_id(tom).teamwork.installed_apps.post(installation()) is None
    query = InstalledAppsRequestBuilder.InstalledAppsRequestBuilderGetQueryParameters(
        expand=["teamsApp"], filter=f"teamsApp/externalId eq '{external_id(tenant_env)}'"
    )
    listed = await graph.users.by_user_id(tom).teamwork.installed_apps.get(RequestConfiguration(query_parameters=query))
    [installed] = listed.value
    assert installed.teams_app.external_id == external_id(tenant_env)
    assert installed.teams_app.id == F.TEAMS_APP
    conversation_id = await conversation(tenant_env, tom)
    response = await bot_post(
        tenant_env, f"v3/conversations/{conversation_id}/activities", {"type": "message", "text": "hi"}
    )
    assert response.status_code == 201


async def test_removing_the_app_takes_the_bot_out_of_the_roster(tenant_env: TenantServer):
    conversation_id = await conversation(tenant_env, F.U["megan"])
    graph = graph_client(tenant_env)
    apps = await graph.users.by_user_id(F.U["megan"]).teamwork.installed_apps.get()
    [installed] = apps.value
    await (
        graph.users.by_user_id(F.U["megan"])
        .teamwork.installed_apps.by_user_scope_teams_app_installation_id(installed.id)
        .delete()
    )
    response = await bot_post(
        tenant_env, f"v3/conversations/{conversation_id}/activities", {"type": "message", "text": "x"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "BotNotInConversationRoster"


async def test_an_unknown_conversation_is_404_conversation_not_found(tenant_env: TenantServer):
    response = await bot_post(tenant_env, "v3/conversations/a:nope/activities", {"type": "message", "text": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ConversationNotFound"


BAD_ACTIVITIES = {
    "unknown type": {"type": "poke", "text": "x"},
    "empty message": {"type": "message"},
    "card without AdaptiveCard type": {"type": "message", "attachments": [{**card(), "content": {"version": "1.5"}}]},
    "card without version": {"type": "message", "attachments": [{**card(), "content": {"type": "AdaptiveCard"}}]},
    "attachment without contentType": {"type": "message", "attachments": [{"content": {}}]},
}


@pytest.mark.parametrize("case", list(BAD_ACTIVITIES))
async def test_an_invalid_activity_is_400_bad_argument_and_not_delivered(tenant_env: TenantServer, case: str):
    conversation_id = await conversation(tenant_env, F.U["megan"])
    response = await bot_post(tenant_env, f"v3/conversations/{conversation_id}/activities", BAD_ACTIVITIES[case])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgument"
    assert activities(tenant_env) == []


async def test_a_message_over_28_kb_is_413_message_size_too_big(tenant_env: TenantServer):
    conversation_id = await conversation(tenant_env, F.U["megan"])
    big = {"type": "message", "attachments": [card("x" * 29 * 1024)]}
    response = await bot_post(tenant_env, f"v3/conversations/{conversation_id}/activities", big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "MessageSizeTooBig"


def _bad_parameters(tenant: TenantServer) -> dict[str, dict[str, Any]]:
    megan = F.U["megan"]
    return {
        "group": parameters(tenant, megan, isGroup=True),
        "two members": parameters(tenant, megan, members=[{"id": megan}, {"id": F.U["sam"]}]),
        "no tenant": parameters(tenant, megan, tenantId=None, channelData={}),
        "other tenant": parameters(tenant, megan, tenantId="00000000-0000-0000-0000-000000000000", channelData={}),
        "unknown user": parameters(tenant, "00000000-0000-4000-8000-999999999999"),
    }


@pytest.mark.parametrize("case", ["group", "two members", "no tenant", "other tenant", "unknown user"])
async def test_invalid_conversation_parameters_are_400_bad_argument(tenant_env: TenantServer, case: str):
    response = await bot_post(tenant_env, "v3/conversations", _bad_parameters(tenant_env)[case])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadArgument"


async def test_the_bot_may_not_name_another_bot_id(tenant_env: TenantServer):
    body = parameters(tenant_env, F.U["megan"], bot={"id": "28:someone-else"})
    assert (await bot_post(tenant_env, "v3/conversations", body)).status_code == 403


async def test_bot_connector_needs_the_bots_own_token_for_api_botframework_com(tenant_env: TenantServer):
    body = parameters(tenant_env, F.U["megan"])
    wrong_audience = await token(GRAPH_SCOPE)
    other_identity = await token(BOT_SCOPE, client_id=F.APP["limited"][0])
    for bearer in ("", wrong_audience, other_identity, "not-a-jwt"):
        response = await bot_post(tenant_env, "v3/conversations", body, bearer=bearer)
        assert response.status_code == 401
        assert response.json() == {"message": "Authorization has been denied for this request."}


# --- Graph: installedApps ---------------------------------------------------------------------------------


async def test_installing_an_app_that_is_already_installed_is_409(tenant_env: TenantServer):
    with pytest.raises(ODataError) as caught:
        await graph_client(tenant_env).users.by_user_id(F.U["megan"]).teamwork.installed_apps.post(installation())
    assert caught.value.response_status_code == 409


async def test_installing_needs_a_teams_app_installation_permission(tenant_env: TenantServer):
    limited = graph_client(tenant_env, client_id=F.APP["limited"][0])
    with pytest.raises(ODataError) as caught:
        await limited.users.by_user_id(F.U["tom"]).teamwork.installed_apps.post(installation())
    assert caught.value.response_status_code == 403
    with pytest.raises(ODataError) as caught:
        await limited.users.by_user_id(F.U["megan"]).teamwork.installed_apps.get()
    assert caught.value.response_status_code == 403


async def test_a_self_permission_reaches_only_the_callers_own_teams_app(tenant_env: TenantServer):
    async def hand_the_app_to_another_entra_app() -> None:
        definition = tenant_env.state.fixture["teamsApps"][0]["appDefinitions"][0]
        definition["azureADAppId"] = F.APP["relay"][0]

    tenant_env.call(hand_the_app_to_another_entra_app())
    graph = graph_client(tenant_env)
    with pytest.raises(ODataError) as caught:
        await graph.users.by_user_id(F.U["tom"]).teamwork.installed_apps.post(installation())
    assert caught.value.response_status_code == 403
    assert (await graph.users.by_user_id(F.U["megan"]).teamwork.installed_apps.get()).value == []


async def _graph_raw(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {await token(GRAPH_SCOPE)}"}
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"{tenant.graph_url}{path}", json=body, headers=headers)


@pytest.mark.parametrize(
    ("bind", "status"),
    [
        (CATALOG + "00000000-0000-4000-8000-00000000dead", 404),
        ("https://graph.microsoft.com/v1.0/users/whatever", 400),
        (None, 400),
    ],
)
async def test_an_install_body_must_bind_a_catalog_app(tenant_env: TenantServer, bind: str | None, status: int):
    response = await _graph_raw(
        tenant_env, "POST", f"/users/{F.U['tom']}/teamwork/installedApps", {"teamsApp@odata.bind": bind}
    )
    assert response.status_code == status
    assert "error" in response.json()


async def test_the_raw_list_has_odata_context_ids_and_expands_only_on_request(tenant_env: TenantServer):
    path = f"/users/{F.U['megan']}/teamwork/installedApps"
    plain = (await _graph_raw(tenant_env, "GET", path)).json()
    assert plain["@odata.context"].endswith(f"/$metadata#users('{F.U['megan']}')/teamwork/installedApps")
    assert list(plain["value"][0]) == ["id"]
    expanded = (await _graph_raw(tenant_env, "GET", path + "?$expand=teamsApp,teamsAppDefinition")).json()
    item = expanded["value"][0]
    assert item["teamsApp"]["externalId"] == external_id(tenant_env)
    assert item["teamsAppDefinition"]["azureADAppId"] == F.APP["func"][0]
    single = await _graph_raw(tenant_env, "GET", f"{path}/{item['id']}")
    assert single.json()["id"] == item["id"]


async def test_a_filter_on_another_external_id_finds_nothing(tenant_env: TenantServer):
    query = "?$filter=teamsApp/externalId eq '11111111-2222-3333-4444-555555555555'"
    path = f"/users/{F.U['megan']}/teamwork/installedApps"
    assert (await _graph_raw(tenant_env, "GET", path + query)).json()["value"] == []


async def test_a_user_without_the_app_lists_nothing(tenant_env: TenantServer):
    listed = await graph_client(tenant_env).users.by_user_id(F.U["tom"]).teamwork.installed_apps.get()
    assert listed.value == []


# --- Workflows webhook ------------------------------------------------------------------------------------


def workflow(tenant: TenantServer, name: str, body: Any = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.post(
            f"{tenant.url}/webhooks/{name}", content=content, headers={"Content-Type": "application/json"}
        )
    return httpx.post(f"{tenant.url}/webhooks/{name}", json=body)


def test_a_valid_card_payload_is_accepted_with_202_and_listed(tenant: TenantServer):
    payload = {"type": "message", "attachments": [card()]}
    response = workflow(tenant, "reset-channel", payload)
    assert response.status_code == 202
    assert httpx.get(f"{tenant.url}/_control/webhooks/reset-channel").json() == [payload]
    assert httpx.get(f"{tenant.url}/_control/webhooks/other").json() == []
    assert httpx.delete(f"{tenant.url}/_control/webhooks/reset-channel").status_code == 204
    assert httpx.get(f"{tenant.url}/_control/webhooks/reset-channel").json() == []


BAD_PAYLOADS = {
    "not a message": {"type": "event", "attachments": [card()]},
    "no attachments": {"type": "message", "attachments": []},
    "legacy MessageCard": {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.hero"}]},
    "content not a card": {"type": "message", "attachments": [{**card(), "content": {"type": "TextBlock"}}]},
    "bare card": card()["content"],
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_a_payload_that_is_not_the_teams_card_shape_is_400(tenant: TenantServer, case: str):
    response = workflow(tenant, "reset-channel", BAD_PAYLOADS[case])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "TriggerInputSchemaMismatch"
    assert httpx.get(f"{tenant.url}/_control/webhooks/reset-channel").json() == []


def test_a_body_that_is_not_json_is_400(tenant: TenantServer):
    assert workflow(tenant, "reset-channel", content=b"{oops").status_code == 400


def test_a_card_over_28_kb_is_413(tenant: TenantServer):
    response = workflow(tenant, "reset-channel", {"type": "message", "attachments": [card("y" * 29 * 1024)]})
    assert response.status_code == 413


def test_the_failure_mode_answers_the_configured_status_then_recovers(tenant: TenantServer):
    fail = httpx.put(f"{tenant.url}/_control/webhooks/reset-channel/fail", json={"count": 1, "status": 503})
    assert fail.status_code == 204
    payload = {"type": "message", "attachments": [card()]}
    assert workflow(tenant, "reset-channel", payload).status_code == 503
    assert workflow(tenant, "reset-channel", payload).status_code == 202
    assert len(httpx.get(f"{tenant.url}/_control/webhooks/reset-channel").json()) == 1


async def test_deleting_the_activities_empties_the_log(tenant_env: TenantServer):
    conversation_id = await conversation(tenant_env, F.U["megan"])
    await bot_post(tenant_env, f"v3/conversations/{conversation_id}/activities", {"type": "message", "text": "x"})
    assert len(activities(tenant_env)) == 1
    assert httpx.delete(f"{tenant_env.url}/_control/bot/activities").status_code == 204
    assert activities(tenant_env) == []
