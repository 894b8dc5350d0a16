"""Teams messaging stand-ins: the Bot Connector API, the Graph route that installs our Teams app for a user,
and a Teams Workflows webhook sink.

Documentation followed:
- Bot Connector REST (v3): https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference
  POST {serviceUrl}/v3/conversations → {id}; POST {serviceUrl}/v3/conversations/{id}/activities → {id};
  bearer token with aud https://api.botframework.com. serviceUrl here is {tenant}/botframework/.
- Proactive messages need the app installed for the user:
  https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages
  (without it Teams refuses the conversation: we answer 403 {"error": {"code": "BotNotInConversationRoster"}})
- Install for a user: https://learn.microsoft.com/graph/api/userteamwork-post-installedapps
  (TeamsAppInstallation.ReadWriteForUser.All; 409 when already installed) and list:
  https://learn.microsoft.com/graph/api/userteamwork-list-installedapps ($expand=teamsApp, $filter on
  teamsApp/externalId)
- Workflows webhook ("When a Teams webhook request is received"): {type: "message", attachments:
  [{contentType: "application/vnd.microsoft.card.adaptive", content: {AdaptiveCard}}]} → 202
Control: GET/DELETE /_control/bot/activities, GET/DELETE /_control/webhooks/{name},
PUT /_control/webhooks/{name}/fail {count, status}.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .auth import authorize, signing_key, v1_issuer, v2_issuer
from .errors import GraphError, bad_request, not_found
from .odata import parse_filter
from .state import TenantState

CARD = "application/vnd.microsoft.card.adaptive"
INSTALL = (
    "TeamsAppInstallation.ReadWriteForUser.All",
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
    "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
)
READ_INSTALL = ("TeamsAppInstallation.ReadForUser.All", *INSTALL)


def _extras(state: TenantState) -> dict[str, Any]:
    return state.extras.setdefault("bot", {"conversations": {}, "activities": [], "webhooks": {}, "fail": {}})


def _bot(state: TenantState) -> dict[str, Any]:
    return state.fixture.get("bot") or {}


def _bot_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _bot_authorised(request: web.Request) -> bool:
    state: TenantState = request.app[STATE]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    try:
        claims = jwt.decode(
            header[7:],
            signing_key()[0].public_key(),
            algorithms=["RS256"],
            audience=["https://api.botframework.com", "https://api.botframework.com/"],
            issuer=[v1_issuer(state.tenant_id), v2_issuer(state.tenant_id)],
        )
    except jwt.PyJWTError:
        return False
    return (claims.get("appid") or claims.get("azp")) == _bot(state).get("appId")


async def create_conversation(request: web.Request) -> web.Response:
    state: TenantState = request.app[STATE]
    if not _bot_authorised(request):
        return _bot_error(401, "Unauthorized", "Authorization has been denied for this request.")
    body = await request.json()
    members = body.get("members") or []
    if body.get("isGroup") or len(members) != 1 or not members[0].get("id"):
        return _bot_error(400, "BadArgument", "A 1:1 conversation needs exactly one member.")
    member = members[0]["id"]
    user_id = member.split(":")[-1]  # "29:..." Teams ids or AAD object ids ("8:orgid:<oid>")
    if user_id not in state.users:
        return _bot_error(404, "NotFound", "The member was not found.")
    if user_id not in _bot(state).get("installedFor", []):
        return _bot_error(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
    conversation = f"a:{uuid.uuid4().hex}"
    _extras(state)["conversations"][conversation] = user_id
    return web.json_response({"id": conversation}, status=201)


async def send_activity(request: web.Request) -> web.Response:
    state: TenantState = request.app[STATE]
    if not _bot_authorised(request):
        return _bot_error(401, "Unauthorized", "Authorization has been denied for this request.")
    conversation = request.match_info["conversation"]
    recipient = _extras(state)["conversations"].get(conversation)
    if recipient is None:
        return _bot_error(404, "ConversationNotFound", "Conversation not found.")
    activity = await request.json()
    if activity.get("type") != "message":
        return _bot_error(400, "BadArgument", "Only message activities are supported.")
    attachments = activity.get("attachments") or []
    if not activity.get("text") and not attachments:
        return _bot_error(400, "BadArgument", "A message needs text or attachments.")
    activity_id = uuid.uuid4().hex
    _extras(state)["activities"].append(
        {
            "id": activity_id,
            "conversation": conversation,
            "recipient": recipient,
            "text": activity.get("text"),
            "attachments": attachments,
        }
    )
    return web.json_response({"id": activity_id}, status=201)


def _installations(state: TenantState, user_id: str) -> list[dict[str, Any]]:
    bot = _bot(state)
    apps = {a["id"]: a for a in state.fixture.get("teamsApps", [])}
    if user_id in bot.get("installedFor", []) and bot.get("teamsAppId") in apps:
        return [{"id": f"{user_id}-{bot['teamsAppId']}", "teamsApp": apps[bot["teamsAppId"]]}]
    return []


async def list_installed(request: web.Request) -> web.Response:
    authorize(request, READ_INSTALL)
    state: TenantState = request.app[STATE]
    user = state.user(request.match_info["id"])
    items = _installations(state, user["id"])
    predicate, _ = parse_filter(request.query.get("$filter"))
    if predicate is not None:
        items = [i for i in items if predicate(i)]
    if "teamsapp" not in (request.query.get("$expand") or "").lower():
        items = [{"id": i["id"]} for i in items]
    return web.json_response({"value": items})


async def install(request: web.Request) -> web.Response:
    authorize(request, INSTALL)
    state: TenantState = request.app[STATE]
    user = state.user(request.match_info["id"])
    body = await request.json()
    bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
    if not isinstance(bind, str) or "/appCatalogs/teamsApps/" not in bind:
        raise bad_request("teamsApp@odata.bind must reference /appCatalogs/teamsApps/{id}.")
    app_id = bind.rstrip("/").rsplit("/", 1)[-1]
    if app_id not in {a["id"] for a in state.fixture.get("teamsApps", [])}:
        raise not_found(f"Teams app '{app_id}' is not in the app catalog.")
    bot = _bot(state)
    if app_id != bot.get("teamsAppId"):
        raise bad_request("Only the MFA Reset app is emulated.")
    installed = bot.setdefault("installedFor", [])
    if user["id"] in installed:
        raise GraphError(409, "Conflict", "The app is already installed for this user.")
    installed.append(user["id"])
    return web.json_response({"id": f"{user['id']}-{app_id}"}, status=201)


async def webhook(request: web.Request) -> web.Response:
    state: TenantState = request.app[STATE]
    name = request.match_info["name"]
    failures = _extras(state)["fail"].get(name) or []
    if failures:
        return web.json_response({"error": "injected"}, status=failures.pop(0))
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response({"error": "not JSON"}, status=400)
    attachments = payload.get("attachments") if isinstance(payload, dict) else None
    if (
        payload.get("type") != "message"
        or not attachments
        or any(a.get("contentType") != CARD or not isinstance(a.get("content"), dict) for a in attachments)
    ):
        return web.json_response({"error": "expected {type: message, attachments: [adaptive cards]}"}, status=400)
    _extras(state)["webhooks"].setdefault(name, []).append(payload)
    return web.Response(status=202)


async def control_activities(request: web.Request) -> web.Response:
    extras = _extras(request.app[STATE])
    if request.method == "DELETE":
        extras["activities"].clear()
        return web.Response(status=204)
    return web.json_response(extras["activities"])


async def control_webhook(request: web.Request) -> web.Response:
    hooks = _extras(request.app[STATE])["webhooks"]
    if request.method == "DELETE":
        hooks.pop(request.match_info["name"], None)
        return web.Response(status=204)
    return web.json_response(hooks.get(request.match_info["name"], []))


async def control_webhook_fail(request: web.Request) -> web.Response:
    body = await request.json()
    fail = _extras(request.app[STATE])["fail"]
    fail[request.match_info["name"]] = [int(body.get("status", 500))] * int(body.get("count", 1))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/botframework/v3/conversations", create_conversation)
    r.add_post("/botframework/v3/conversations/{conversation}/activities", send_activity)
    for version in ("/v1.0", "/beta"):
        r.add_get(f"{version}/users/{{id}}/teamwork/installedApps", list_installed)
        r.add_post(f"{version}/users/{{id}}/teamwork/installedApps", install)
    r.add_post("/webhooks/{name}", webhook)
    r.add_get("/_control/bot/activities", control_activities)
    r.add_delete("/_control/bot/activities", control_activities)
    r.add_get("/_control/webhooks/{name}", control_webhook)
    r.add_delete("/_control/webhooks/{name}", control_webhook)
    r.add_put("/_control/webhooks/{name}/fail", control_webhook_fail)
