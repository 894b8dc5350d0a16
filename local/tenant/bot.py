"""Teams messaging stand-ins: the Bot Connector API (serviceUrl = {tenant}/botframework/) and the Graph routes that
install our Teams app for a user, with a control API (the Workflows webhook sink is in webhook.py).

Documentation followed:
- Bot Connector REST v3: https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference
  Create Conversation POST /v3/conversations (ConversationParameters {bot, isGroup, members, tenantId,
  channelData, activity?}) → ConversationResourceResponse {id, activityId?, serviceUrl?}; Send to Conversation
  POST /v3/conversations/{conversationId}/activities (Activity) → ResourceResponse {id}; Reply to Activity
  POST /v3/conversations/{conversationId}/activities/{activityId} (the same, replyToId = activityId); ErrorResponse
  {"error": {"code", "message"}}. Auth: https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
  (bearer token for https://api.botframework.com issued to the bot's app id; a managed-identity bot uses its MI).
- Teams proactive 1:1 messages: https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages
  (members [{id}] with the user's Teams id or Entra object id, tenantId / channelData.tenant.id; the app must be
  installed for the user). Status codes: https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/conversation-messages
  (403 BotNotInConversationRoster "The bot is not part of the conversation roster.", 404 ConversationNotFound,
  413 MessageSizeTooBig; Teams limits a message to about 28 KB).
- Install for a user: https://learn.microsoft.com/graph/api/userteamwork-post-installedapps (body
  {"teamsApp@odata.bind": ".../appCatalogs/teamsApps/{id}"} → 201, no body). List:
  https://learn.microsoft.com/graph/api/userteamwork-list-installedapps ($expand=teamsApp,teamsAppDefinition,
  $filter=teamsApp/externalId eq '...'; with a *Self* permission only the caller's own app is visible).
  Get: userteamwork-get-installedapps; remove: userteamwork-delete-installedapps.

Choices where the docs are silent are marked "Docs silent" at the handler.

Control (no auth, loopback only):
| GET/DELETE /_control/bot/activities            | every activity sent: conversation, recipient, text, attachments |
| GET        /_control/bot/conversations         | conversation id → user id                                       |
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .auth import authorize, signing_key, v1_issuer, v2_issuer
from .errors import GraphError, bad_request, forbidden, not_found
from .odata import parse_filter
from .state import TenantState

GRAPH = "https://graph.microsoft.com/v1.0"
BOT_AUDIENCE = "https://api.botframework.com"
CARD = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28 * 1024
ACTIVITY_TYPES = ("message", "typing")
# Least privileged first, then the higher ones the page lists (Self = only the caller's own app).
SELF = ("TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All")
WRITE_ANY = (
    "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
    "TeamsAppInstallation.ReadWriteSelectedForUser.All",
)
INSTALL = (SELF[0], *WRITE_ANY, SELF[1])
READ = ("TeamsAppInstallation.ReadForUser.All", *INSTALL)
APP_BIND = re.compile(r"^https://graph\.microsoft\.com/(?:v1\.0|beta)/appCatalogs/teamsApps/(?P<id>[^/?#]+)$")


class BotError(Exception):
    """A Bot Connector ErrorResponse."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _extras(state: TenantState) -> dict[str, Any]:
    return state.extras.setdefault("bot", {"conversations": {}, "activities": []})


def _bot(state: TenantState) -> dict[str, Any]:
    return state.fixture.setdefault("bot", {})


def _catalog(state: TenantState) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in state.fixture.get("teamsApps", [])}


def _installed(state: TenantState, user_id: str) -> list[str]:
    """Teams app ids installed for the user; the bot's app follows the fixture's installedFor list."""
    bot = _bot(state)
    return [bot["teamsAppId"]] if user_id in bot.get("installedFor", []) and bot.get("teamsAppId") else []


# --- Bot Connector ----------------------------------------------------------------------------------------


def _bot_caller(request: web.Request) -> dict[str, Any]:
    """The bot's verified token; Bot Connector answers anything else with ASP.NET's 401 message."""
    state: TenantState = request.app[STATE]
    header = request.headers.get("Authorization", "")
    denied = web.HTTPUnauthorized(
        text=json.dumps({"message": "Authorization has been denied for this request."}),
        content_type="application/json",
    )
    if not header.startswith("Bearer "):
        raise denied
    try:
        claims = jwt.decode(
            header[7:],
            signing_key()[0].public_key(),
            algorithms=["RS256"],
            audience=[BOT_AUDIENCE, BOT_AUDIENCE + "/"],
            issuer=[v1_issuer(state.tenant_id), v2_issuer(state.tenant_id)],
            options={"require": ["exp", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        raise denied from None
    if (claims.get("appid") or claims.get("azp")) != _bot(state).get("appId"):
        raise denied
    return claims


def bot_route(handler):
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except BotError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)

    return wrapped


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BotError(400, "BadSyntax", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BotError(400, "BadSyntax", "The request body must be a JSON object.")
    return body


def _member_user(state: TenantState, member: Any) -> str:
    """A member given as the Entra object id, "8:orgid:<oid>" or {aadObjectId}; Teams "29:" ids are not issued."""
    if not isinstance(member, dict):
        raise BotError(400, "BadArgument", "Each member must be an object with an id.")
    candidate = member.get("aadObjectId") or str(member.get("id") or "")
    candidate = candidate.removeprefix("8:orgid:")
    if candidate not in state.users:
        # The message Teams gives for an id that is not a user of the tenant.
        raise BotError(400, "BadArgument", "Invalid user identity in provided tenant")
    return candidate


def _conversation_id(state: TenantState, user_id: str) -> str:
    """Teams keeps one 1:1 conversation per bot and user, so creating it again returns the same id."""
    seed = uuid.uuid5(uuid.NAMESPACE_URL, f"{state.tenant_id}/{_bot(state).get('appId')}/{user_id}")
    return "a:1" + base64.urlsafe_b64encode(seed.bytes).decode().rstrip("=")


@bot_route
async def create_conversation(request: web.Request) -> web.Response:
    """POST /botframework/v3/conversations (Create Conversation, Teams personal scope)."""
    claims = _bot_caller(request)
    state: TenantState = request.app[STATE]
    body = await _json_object(request)
    if body.get("isGroup"):
        # Teams does not let a bot create group chats; channel threads (channelData.channel) are not emulated.
        raise BotError(400, "BadArgument", "Only one-on-one conversations can be created here.")
    members = body.get("members")
    if not isinstance(members, list) or len(members) != 1:
        raise BotError(400, "BadArgument", "A one-on-one conversation needs exactly one member.")
    tenant_id = body.get("tenantId") or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
    if not tenant_id:
        raise BotError(400, "BadArgument", "The tenant id (tenantId or channelData.tenant.id) is required.")
    if tenant_id != state.tenant_id:
        raise BotError(400, "BadArgument", "Invalid user identity in provided tenant")
    bot_id = str((body.get("bot") or {}).get("id") or "").removeprefix("28:")
    if bot_id and bot_id != claims.get("appid", claims.get("azp")):
        # Docs silent: a bot may only speak as itself.
        raise BotError(403, "Forbidden", "The bot id does not match the caller.")
    user_id = _member_user(state, members[0])
    if _bot(state).get("teamsAppId") not in _installed(state, user_id):
        raise BotError(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
    conversation = _conversation_id(state, user_id)
    _extras(state)["conversations"][conversation] = user_id
    answer: dict[str, Any] = {"id": conversation}
    if isinstance(body.get("activity"), dict):
        answer["activityId"] = _deliver(state, conversation, user_id, body["activity"])
    return web.json_response(answer, status=201)


def _check_activity(activity: dict[str, Any]) -> None:
    if activity.get("type") not in ACTIVITY_TYPES:
        raise BotError(400, "BadArgument", f"Unsupported activity type '{activity.get('type')}'.")
    attachments = activity.get("attachments") or []
    if not isinstance(attachments, list):
        raise BotError(400, "BadArgument", "attachments must be an array.")
    for attachment in attachments:
        if not isinstance(attachment, dict) or not attachment.get("contentType"):
            raise BotError(400, "BadArgument", "Every attachment needs a contentType.")
        content = attachment.get("content")
        if attachment["contentType"] == CARD and (
            not isinstance(content, dict) or content.get("type") != "AdaptiveCard" or not content.get("version")
        ):
            raise BotError(
                400, "BadArgument", "An Adaptive Card attachment needs content {type: AdaptiveCard, version}."
            )
    if activity["type"] == "message" and not activity.get("text") and not attachments:
        raise BotError(400, "BadArgument", "A message needs text or attachments.")
    if len(json.dumps(activity).encode()) > MAX_MESSAGE_BYTES:
        raise BotError(413, "MessageSizeTooBig", "Message size too large.")


def _deliver(state: TenantState, conversation: str, user_id: str, activity: dict[str, Any]) -> str:
    _check_activity(activity)
    activities = _extras(state)["activities"]
    # Teams activity ids are millisecond timestamps; the counter keeps them unique within one millisecond.
    activity_id = str(int(state.now().timestamp() * 1000) * 100 + len(activities) % 100)
    user = state.users[user_id]
    activities.append(
        {
            "id": activity_id,
            "conversation": conversation,
            "recipient": user_id,
            "recipientName": user.get("displayName"),
            "type": activity["type"],
            "text": activity.get("text"),
            "textFormat": activity.get("textFormat"),
            "summary": activity.get("summary"),
            "replyToId": activity.get("replyToId"),
            "attachments": activity.get("attachments") or [],
            "time": state.now().isoformat(),
        }
    )
    return activity_id


@bot_route
async def send_activity(request: web.Request) -> web.Response:
    """POST /botframework/v3/conversations/{conversationId}/activities (Send to Conversation), and
    .../activities/{activityId} (Reply to Activity: https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-send-and-receive-messages)."""
    _bot_caller(request)
    state: TenantState = request.app[STATE]
    conversation = request.match_info["conversation"]
    user_id = _extras(state)["conversations"].get(conversation)
    if user_id is None:
        raise BotError(404, "ConversationNotFound", "Conversation not found.")
    activity = await _json_object(request)
    if "activity" in request.match_info:
        activity.setdefault("replyToId", request.match_info["activity"])
    if _bot(state).get("teamsAppId") not in _installed(state, user_id):
        # The user removed the app after the conversation was created: the bot left the roster.
        raise BotError(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
    return web.json_response({"id": _deliver(state, conversation, user_id, activity)}, status=201)


# --- Graph: apps installed for a user ---------------------------------------------------------------------


def _installation_id(user_id: str, app_id: str) -> str:
    # The documented examples are base64 of "{userId}##{teamsAppId}".
    return base64.b64encode(f"{user_id}##{app_id}".encode()).decode()


def _caller_may_touch(claims: dict[str, Any], app: dict[str, Any]) -> bool:
    """Self permissions reach only the app whose Entra app (webApplicationInfo / bot) is the caller."""
    granted = set(claims.get("roles", [])) | set(claims.get("scp", "").split())
    if granted.intersection((*WRITE_ANY, "TeamsAppInstallation.ReadForUser.All")):
        return True
    caller = claims.get("appid") or claims.get("azp")
    return any(d.get("azureADAppId") == caller for d in app.get("appDefinitions", []))


def _installation_json(state: TenantState, user_id: str, app_id: str, expand: str) -> dict[str, Any]:
    app = _catalog(state).get(app_id, {"id": app_id})
    item: dict[str, Any] = {"id": _installation_id(user_id, app_id)}
    wanted = {e.strip().lower() for e in expand.split(",") if e.strip()}
    if "teamsapp" in wanted:
        item["teamsApp"] = {k: v for k, v in app.items() if k != "appDefinitions"}
    if "teamsappdefinition" in wanted:
        definitions = app.get("appDefinitions") or [{}]
        item["teamsAppDefinition"] = {k: v for k, v in definitions[-1].items() if k != "bot"}
    return item


def _visible(request: web.Request, claims: dict[str, Any], user_id: str) -> list[str]:
    state: TenantState = request.app[STATE]
    catalog = _catalog(state)
    return [a for a in _installed(state, user_id) if _caller_may_touch(claims, catalog.get(a, {}))]


async def list_installed(request: web.Request) -> web.Response:
    """GET /users/{id}/teamwork/installedApps ($expand, $filter)."""
    claims = authorize(request, READ)
    state: TenantState = request.app[STATE]
    user = state.user(request.match_info["id"])
    expand = request.query.get("$expand", "")
    predicate, _ = parse_filter(request.query.get("$filter"))
    items = []
    for app_id in _visible(request, claims, user["id"]):
        full = _installation_json(state, user["id"], app_id, "teamsApp,teamsAppDefinition")
        if predicate is None or predicate(full):
            items.append(_installation_json(state, user["id"], app_id, expand))
    context = f"{GRAPH}/$metadata#users('{user['id']}')/teamwork/installedApps"
    return web.json_response({"@odata.context": context, "value": items})


def _installation(request: web.Request, claims: dict[str, Any]) -> tuple[dict[str, Any], str]:
    state: TenantState = request.app[STATE]
    user = state.user(request.match_info["id"])
    try:
        owner, app_id = base64.b64decode(request.match_info["installation"]).decode().split("##", 1)
    except (ValueError, UnicodeDecodeError):
        raise not_found("The app installation was not found.") from None
    if owner != user["id"] or app_id not in _visible(request, claims, user["id"]):
        raise not_found("The app installation was not found.")
    return user, app_id


async def get_installed(request: web.Request) -> web.Response:
    """GET /users/{id}/teamwork/installedApps/{installation-id}."""
    claims = authorize(request, READ)
    user, app_id = _installation(request, claims)
    body = _installation_json(request.app[STATE], user["id"], app_id, request.query.get("$expand", ""))
    context = f"{GRAPH}/$metadata#users('{user['id']}')/teamwork/installedApps/$entity"
    return web.json_response({"@odata.context": context, **body})


async def install(request: web.Request) -> web.Response:
    """POST /users/{id}/teamwork/installedApps {"teamsApp@odata.bind"} → 201 with no body."""
    claims = authorize(request, INSTALL)
    state: TenantState = request.app[STATE]
    user = state.user(request.match_info["id"])
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
    match = APP_BIND.match(bind) if isinstance(bind, str) else None
    if match is None:
        raise bad_request("teamsApp@odata.bind must be https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{id}.")
    app = _catalog(state).get(match["id"])
    if app is None:
        # Docs silent on the status; an unknown catalog id is a missing resource.
        raise not_found(f"The Teams app '{match['id']}' was not found in the app catalog.")
    if not _caller_may_touch(claims, app):
        raise forbidden("A Self permission can install only the calling application's own Teams app.")
    if app["id"] != _bot(state).get("teamsAppId"):
        raise bad_request("Only the MFA Reset Teams app can be installed in the local tenant.")
    if app["id"] in _installed(state, user["id"]):
        raise GraphError(409, "Conflict", "The app is already installed for this user.")
    _bot(state).setdefault("installedFor", []).append(user["id"])
    return web.Response(status=201)


async def uninstall(request: web.Request) -> web.Response:
    """DELETE /users/{id}/teamwork/installedApps/{installation-id} → 204."""
    claims = authorize(request, INSTALL)
    user, _ = _installation(request, claims)
    _bot(request.app[STATE])["installedFor"].remove(user["id"])
    return web.Response(status=204)


# --- control ----------------------------------------------------------------------------------------------


async def control_activities(request: web.Request) -> web.Response:
    extras = _extras(request.app[STATE])
    if request.method == "DELETE":
        extras["activities"].clear()
        return web.Response(status=204)
    return web.json_response(extras["activities"])


async def control_conversations(request: web.Request) -> web.Response:
    return web.json_response(_extras(request.app[STATE])["conversations"])


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/botframework/v3/conversations", create_conversation)
    r.add_post("/botframework/v3/conversations/{conversation}/activities", send_activity)
    r.add_post("/botframework/v3/conversations/{conversation}/activities/{activity}", send_activity)
    for version in ("/v1.0", "/beta"):
        base = f"{version}/users/{{id}}/teamwork/installedApps"
        r.add_get(base, list_installed)
        r.add_post(base, install)
        r.add_get(base + "/{installation}", get_installed)
        r.add_delete(base + "/{installation}", uninstall)
    r.add_get("/_control/bot/activities", control_activities)
    r.add_delete("/_control/bot/activities", control_activities)
    r.add_get("/_control/bot/conversations", control_conversations)
