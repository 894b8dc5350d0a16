"""Teams 1:1 messages from our bot (its identity is our managed identity) through the Bot Connector API.

Docs: proactive messages https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages
(create the personal conversation with the user's Entra object id and the tenant id, then send the activity; the
app must be installed for the user, else 403 BotNotInConversationRoster - install it through Graph and retry);
Bot Connector REST https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference
(POST /v3/conversations, POST /v3/conversations/{id}/activities); authentication with a token for
https://api.botframework.com issued to the bot's app id (for a user-assigned managed identity bot, the identity:
https://learn.microsoft.com/azure/bot-service/provision-and-publish-a-bot).

Replies to a user who wrote to the bot follow https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-send-and-receive-messages
(conversation = the message's conversation, from = its recipient, recipient = its from, replyToId = its id; POST
{serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}). The serviceUrl comes from the incoming
activity, so the bot's token goes only to the scheme, host and port of TEAMS_BOT_SERVICE_URL ("do NOT include it in
HTTP requests that you send to other services", bot-framework-rest-connector-authentication).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from graph.errors import GraphCallError
from graph.teams import TeamsApps

from .errors import DeliveryError, NotDeliverable, from_status, retry_after_seconds
from .message import Audience, Message
from .render import card_attachment
from .transport import Recipient

log = logging.getLogger(__name__)
BOT_SCOPE = "https://api.botframework.com/.default"


class TeamsBot:
    name = "teams"

    def __init__(
        self,
        http: httpx.AsyncClient,
        credential: AsyncTokenCredential,
        *,
        app_id: str,
        service_url: str,
        tenant_id: str,
        apps: TeamsApps | None,
        teams_app_id: str,
    ):
        self._http = http
        self._credential = credential
        self._app_id = app_id
        self._base = service_url.rstrip("/") + "/v3/conversations"
        self._origin = _origin(service_url)
        self._tenant_id = tenant_id
        self._apps = apps
        self._teams_app_id = teams_app_id
        self._conversations: dict[str, str] = {}  # user id → conversation id (Teams keeps one per bot and user)
        self.installed: list[str] = []  # users we installed the app for (reported in the audit)

    def accepts(self, recipient: Recipient) -> bool:
        return recipient.audience is not Audience.CHANNEL

    async def _headers(self) -> dict[str, str]:
        try:
            token = await self._credential.get_token(BOT_SCOPE)
        except ClientAuthenticationError as exc:
            raise DeliveryError("noBotToken", type(exc).__name__, retryable=True) from None
        return {"Authorization": f"Bearer {token.token}"}

    async def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.post(url, json=body, headers=await self._headers())
        except httpx.HTTPError as exc:
            raise DeliveryError("unreachable", type(exc).__name__, retryable=True) from None

    async def _conversation(self, user_id: str) -> str:
        if user_id in self._conversations:
            return self._conversations[user_id]
        body = {
            "bot": {"id": f"28:{self._app_id}"},
            "isGroup": False,
            "members": [{"id": f"8:orgid:{user_id}", "aadObjectId": user_id}],
            "tenantId": self._tenant_id,
            "channelData": {"tenant": {"id": self._tenant_id}},
        }
        response = await self._post(self._base, body)
        if response.status_code in (200, 201):
            self._conversations[user_id] = response.json()["id"]
            return self._conversations[user_id]
        await self._refused(response, user_id)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _refused(self, response: httpx.Response, user_id: str) -> None:
        code = _error_code(response)
        if response.status_code == 403 and code == "BotNotInConversationRoster":
            self._conversations.pop(user_id, None)
            await self._install(user_id)
        if response.status_code == 404 and code == "ConversationNotFound":
            self._conversations.pop(user_id, None)
            raise DeliveryError("conversationNotFound", "the conversation is gone", retryable=True)
        if response.status_code == 400 and code == "BadArgument":
            raise NotDeliverable("Teams does not know this user")
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise from_status(response.status_code, "Bot Connector", retry_after)

    async def _install(self, user_id: str) -> None:
        """The bot is not in the user's roster: install our app for them, then let the retry try again."""
        if self._apps is None or not self._teams_app_id:
            raise NotDeliverable("the Teams app is not installed for the user and TEAMS_APP_CATALOG_ID is not set")
        try:
            await self._apps.install_for_user(user_id, self._teams_app_id)
        except GraphCallError as exc:
            raise DeliveryError(
                "installFailed", f"installing the Teams app: {exc.status} {exc.code}", retryable=exc.transient
            ) from None
        self.installed.append(user_id)
        log.info("installed the Teams app for user %s", user_id)
        # Teams adds the bot to the roster shortly after the installation: the retry's backoff gives it that time.
        raise DeliveryError("botInstalled", "installed; retrying", retryable=True)

    async def send(self, recipient: Recipient, message: Message, delivery_id: str) -> None:
        if not recipient.user_id:
            raise NotDeliverable("no user id")
        conversation = await self._conversation(recipient.user_id)
        activity = {
            "type": "message",
            "summary": message.subject,
            "attachments": [card_attachment(message)],
            "channelData": {"notification": {"alert": True}},
        }
        response = await self._post(f"{self._base}/{conversation}/activities", activity)
        if response.status_code not in (200, 201):
            await self._refused(response, recipient.user_id)

    def trusts(self, service_url: str) -> bool:
        """Whether the bot may send its token to this serviceUrl: the configured Bot Connector's origin only."""
        return self._origin is not None and _origin(service_url) == self._origin

    async def reply(self, activity: Mapping[str, Any], text: str) -> None:
        """Answer a message a user wrote to the bot, once, with plain text, in the conversation it came from."""
        service_url = str(activity.get("serviceUrl") or "")
        if not self.trusts(service_url):
            raise NotDeliverable("the activity's serviceUrl is not the configured Bot Connector")
        conversation = dict(activity["conversation"])
        url = f"{service_url.rstrip('/')}/v3/conversations/{quote(str(conversation['id']), safe='')}/activities"
        reply: dict[str, Any] = {
            "type": "message",
            "from": activity.get("recipient") or {"id": f"28:{self._app_id}"},
            "recipient": activity["from"],
            "conversation": conversation,
            "text": text,
            "textFormat": "plain",
        }
        if activity.get("locale"):
            reply["locale"] = activity["locale"]
        if activity.get("id"):
            reply["replyToId"] = activity["id"]
            url += f"/{quote(str(activity['id']), safe='')}"
        response = await self._post(url, reply)
        if response.status_code not in (200, 201):
            raise from_status(
                response.status_code, "Bot Connector", retry_after_seconds(response.headers.get("Retry-After"))
            )

    async def close(self) -> None:
        await self._http.aclose()
        await self._credential.close()


def _error_code(response: httpx.Response) -> str:
    try:
        return str((response.json().get("error") or {}).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def _origin(url: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) of a URL, lower-cased; None when it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        return None
    return parts.scheme.lower(), parts.netloc.lower()
