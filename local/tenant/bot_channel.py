"""The Bot Connector's side of a bot's messaging endpoint: its OpenID metadata and signing keys (a key of their own,
not the tenant's Entra key), and a control route that delivers an activity to a bot as Teams does, with a channel
token signed the way the Bot Connector signs it.

Documentation followed:
- https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication, "Authenticate
  requests from the Bot Connector service to your bot": metadata at login.botframework.com/v1/.well-known/
  openidconfiguration {issuer https://api.botframework.com, jwks_uri, id_token_signing_alg_values_supported [RS256]};
  a JWKS whose keys carry `endorsements` (channel ids); the token in `Authorization: Bearer`, header {typ, alg RS256,
  x5t, kid}, claims {aud: the bot's app id, iss: https://api.botframework.com, nbf, exp} and the service URL claim
  (spelled "serviceUrl" on the page, "serviceurl" by the SDKs that read it; we write the SDKs' spelling).
- Activity object: https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object;
  Teams personal-chat messages (from.aadObjectId, conversation {conversationType: personal, tenantId, id},
  channelData.tenant.id): https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/conversation-messages
- Conversation events: https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/subscribe-to-conversation-events

Docs silent: token lifetime (one hour chosen, like Entra's), the endorsement list of a real key (about 20 channel ids
per the SDK's comments; we list a few), Teams' own "29:" user ids (we use "8:orgid:{objectId}", as bot.py accepts).

Routes:
| GET  /botframework-login/v1/.well-known/openidconfiguration | the metadata (TEAMS_BOT_OPENID_METADATA_URL locally) |
| GET  /botframework-login/v1/.well-known/keys                | the JWKS, with endorsements                          |
| POST /_control/bot/incoming {url, activity, userId?}        | the activity completed as Teams sends it, POSTed to  |
|                                                             | url with a channel token for the bot's app id;       |
|                                                             | answers {status, body, activity}                     |
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .appkeys import STATE, URLS
from .bot import _bot, _conversation_id, _extras
from .state import TenantState

ISSUER = "https://api.botframework.com"
METADATA_PATH = "/botframework-login/v1/.well-known/openidconfiguration"
KEYS_PATH = "/botframework-login/v1/.well-known/keys"
ENDORSEMENTS = ("msteams", "webchat", "directline", "emulator")
TOKEN_LIFETIME_S = 3600
POST_TIMEOUT_S = 15  # how long Teams waits for a bot: 15 s per community reports, unconfirmed in the pages we read


_last_activity_id = 0


def _activity_id(state: TenantState) -> str:
    """Teams message ids are millisecond timestamps; two in the same millisecond still get distinct ids here."""
    global _last_activity_id
    _last_activity_id = max(_last_activity_id + 1, int(state.now().timestamp() * 1000))
    return str(_last_activity_id)


@functools.lru_cache(maxsize=1)
def channel_signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    """The Bot Connector's own RSA key (never the tenant's), with its key id."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), "bf-" + uuid.uuid4().hex[:16]


def channel_jwks() -> dict[str, Any]:
    key, kid = channel_signing_key()
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "x5t": kid, "use": "sig", "kty": "RSA", "endorsements": list(ENDORSEMENTS)})
    return {"keys": [public]}


def channel_token(state: TenantState, service_url: str, *, key=None, kid: str | None = None, **claims: Any) -> str:
    """A channel token as the Bot Connector signs it for the fixture's bot; `claims` override (None removes)."""
    private, own_kid = channel_signing_key()
    now = int(state.now().timestamp())
    body: dict[str, Any] = {
        "serviceurl": service_url,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_S,
        "iss": ISSUER,
        "aud": _bot(state).get("appId"),
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    kid = kid or own_kid
    return jwt.encode(body, key or private, algorithm="RS256", headers={"typ": "JWT", "x5t": kid, "kid": kid})


def service_url_of(app: web.Application) -> str:
    """The Bot Connector's serviceUrl in this tenant (bot.py serves it)."""
    return app[URLS]["http"] + "/botframework/"


def inbound_activity(state: TenantState, service_url: str, activity: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The activity as Teams delivers it from `user_id`'s 1:1 chat with the bot; given fields win.

    Registers the 1:1 conversation so the bot's reply (Send to Conversation / Reply to Activity) finds it.
    """
    bot = _bot(state)
    user = state.users[user_id]
    conversation = _conversation_id(state, user_id)
    _extras(state)["conversations"][conversation] = user_id
    now = state.now()
    filled: dict[str, Any] = {
        "type": "message",
        "id": _activity_id(state),
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": f"8:orgid:{user_id}", "name": user.get("displayName"), "aadObjectId": user_id},
        "conversation": {"conversationType": "personal", "tenantId": state.tenant_id, "id": conversation},
        "recipient": {"id": f"28:{bot.get('appId')}", "name": "MFA Reset"},
        "channelData": {"tenant": {"id": state.tenant_id}},
        "locale": "en-US",
    }
    filled.update(activity)
    return filled


async def openid_configuration(request: web.Request) -> web.Response:
    base = str(request.url.origin())
    return web.json_response(
        {
            "issuer": ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": base + KEYS_PATH,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
    )


async def keys(request: web.Request) -> web.Response:
    return web.json_response(channel_jwks())


async def control_incoming(request: web.Request) -> web.Response:
    """POST /_control/bot/incoming {url, activity, userId?}: Teams → Bot Connector → the bot's endpoint."""
    state: TenantState = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "the body must be JSON"}, status=400)
    url, activity = (body.get("url"), body.get("activity") or {}) if isinstance(body, dict) else (None, None)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or not isinstance(activity, dict):
        return web.json_response({"error": "give {url, activity}"}, status=400)
    user_id = body.get("userId") or (activity.get("from") or {}).get("aadObjectId")
    if user_id not in state.users:
        return web.json_response({"error": "userId (or activity.from.aadObjectId) must be a user"}, status=400)
    sent = inbound_activity(state, service_url_of(request.app), activity, user_id)
    token = channel_token(state, sent["serviceUrl"])
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url,
                json=sent,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
            ) as response,
        ):
            answer = {"status": response.status, "body": await response.text(), "activity": sent}
    except (TimeoutError, aiohttp.ClientError) as exc:
        return web.json_response({"error": f"the bot did not answer: {type(exc).__name__}"}, status=502)
    return web.json_response(answer)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(METADATA_PATH, openid_configuration)
    r.add_get(KEYS_PATH, keys)
    r.add_post("/_control/bot/incoming", control_incoming)
