"""POST /api/messages: the Azure Bot's messaging endpoint, where Teams (through the Bot Connector) delivers activities.

The bot only sends notifications; it does not converse. So:
- `conversationUpdate` (the app was installed, members changed) and `installationUpdate` → 200, nothing else;
- `message` from a user → one plain-text reply saying what the bot is for, that it never sends a pass, and where to
  request a reset (notify/templates.py BOT_REPLY), sent by the notifier's Teams transport;
- any other type → 200. Teams "sends notifications to your bot for conversation events"; "you must design your bot
  to receive unexpected events" and the SDK answers 200 to the ones it does not handle:
  https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/subscribe-to-conversation-events

The Bot Connector's bearer token is verified first (extensions/bot_token.py): a request whose token fails any check
is answered 403 Forbidden, as "Authentication with the Bot Connector API" tells bots to reject it, and changes
nothing; a malformed activity is 400. The activity schema (type, id, serviceUrl, channelId, from, recipient,
conversation, channelData) is https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object.
Neither the token nor what the user wrote is ever logged.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notify.errors import DeliveryError
from notify.templates import BOT_REPLY

from .bot_token import ChannelVerifier
from .container import Container, get_container
from .errors import ChannelRejected, SigningKeysUnavailable
from .http_util import error_response

bp = func.Blueprint()
log = logging.getLogger(__name__)

MAX_ACTIVITY_BYTES = 256 * 1024
QUIET_TYPES = ("conversationUpdate", "installationUpdate")
# Messages this process already answered (conversation and activity id): a redelivered activity gets no second reply.
ANSWERED_MEMORY = 1024
_answered: OrderedDict[tuple[str, str], None] = OrderedDict()


class _Account(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str = Field(min_length=1)
    role: str | None = None
    aad_object_id: str | None = Field(None, alias="aadObjectId")


class _Conversation(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)


class Activity(BaseModel):
    """The parts of an incoming activity we read; the rest is ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    type: str = Field(min_length=1)
    id: str | None = None
    service_url: str = Field(alias="serviceUrl", min_length=1)
    channel_id: str = Field(alias="channelId", min_length=1)
    sender: _Account | None = Field(None, alias="from")
    recipient: _Account | None = None
    conversation: _Conversation | None = None
    locale: str | None = None
    channel_data: dict[str, Any] | None = Field(None, alias="channelData")

    @property
    def tenant_id(self) -> str | None:
        tenant = (self.channel_data or {}).get("tenant")
        return str(tenant.get("id")) if isinstance(tenant, dict) and tenant.get("id") else None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors())


@bp.route(route="messages", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def messages(req: func.HttpRequest) -> func.HttpResponse:
    container = get_container()
    verifier = container.channel_verifier
    try:
        token = await verifier.verify(req.headers.get("Authorization"))
    except ChannelRejected as exc:
        log.warning("bot activity refused: %s", exc)
        return error_response(403, "forbidden", str(exc))
    except SigningKeysUnavailable as exc:
        log.error("bot activity not verified: %s", exc)
        return error_response(503, "signingKeysUnavailable", "the Bot Connector's signing keys cannot be read; retry")
    raw = req.get_body()
    if len(raw) > MAX_ACTIVITY_BYTES:
        return error_response(413, "payloadTooLarge", f"the activity exceeds {MAX_ACTIVITY_BYTES} bytes")
    try:
        activity = Activity.model_validate(json.loads(raw or b"null"))
    except json.JSONDecodeError as exc:
        return error_response(400, "invalidJson", f"the body is not JSON: {exc.msg}")
    except ValidationError as exc:
        return error_response(400, "invalidActivity", _problems(exc))
    try:
        ChannelVerifier.check_activity(token, activity.service_url, activity.channel_id)
    except ChannelRejected as exc:
        log.warning("bot activity refused: %s", exc)
        return error_response(403, "forbidden", str(exc))
    if activity.type == "message":
        if activity.sender is None or activity.conversation is None:
            return error_response(400, "invalidActivity", "a message needs from.id and conversation.id")
        await _answer(container, activity, activity.sender, activity.conversation)
    elif activity.type in QUIET_TYPES:
        log.info("bot activity %s received", activity.type)
    else:
        log.info("bot activity of type %s ignored", activity.type)
    return func.HttpResponse(status_code=200)


async def _answer(container: Container, activity: Activity, sender: _Account, conversation: _Conversation) -> None:
    """One reply per message from a user of our tenant; failures are logged, never the Bot Connector's problem."""
    who = sender.aad_object_id or sender.id
    if sender.role == "bot" or (activity.recipient is not None and sender.id == activity.recipient.id):
        log.info("bot message from a bot ignored")
        return
    tenant = container.settings.tenant_id
    if tenant and activity.tenant_id and activity.tenant_id.lower() != tenant.lower():
        log.warning("bot message from another tenant (%s) not answered", activity.tenant_id)
        return
    if container.bot is None:
        log.info("bot message from %s not answered: the Teams transport is off", who)
        return
    key = (conversation.id, activity.id or "")
    if activity.id and key in _answered:
        log.info("bot message %s from %s was already answered", activity.id, who)
        return
    if activity.id:
        _answered[key] = None
        while len(_answered) > ANSWERED_MEMORY:
            _answered.popitem(last=False)
    incoming = activity.model_dump(by_alias=True, exclude_none=True, include={"id", "service_url", "locale"})
    incoming.update(
        conversation=conversation.model_dump(by_alias=True, exclude_none=True),
        **{"from": sender.model_dump(by_alias=True, exclude_none=True)},
    )
    if activity.recipient is not None:
        incoming["recipient"] = activity.recipient.model_dump(by_alias=True, exclude_none=True)
    try:
        await container.bot.reply(incoming, BOT_REPLY)
    except DeliveryError as exc:
        _answered.pop(key, None)  # a redelivery of this message may try again
        log.warning("bot reply to %s failed: %s", who, exc.code)
        return
    log.info("bot message from %s answered", who)
