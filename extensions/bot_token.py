"""Verifies the bearer token the Bot Connector service puts on every activity it POSTs to our messaging endpoint.

Follows https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication,
"Authenticate requests from the Bot Connector service to your bot":
- step 2: the OpenID metadata document at https://login.botframework.com/v1/.well-known/openidconfiguration (a
  static URL; TEAMS_BOT_OPENID_METADATA_URL lets the local tenant stand in) names the `jwks_uri` and the signing
  algorithms (`id_token_signing_alg_values_supported`: RS256);
- step 3: each key of that JWKS also carries `endorsements`, the channel ids it may sign for; an activity whose
  `channelId` (Teams: "msteams") the signing key does not endorse is refused. The keys may be cached for long
  periods; we keep them a day and read them again when a token names a key we do not know (at most once a minute);
- step 4: the token came in the Authorization header with the Bearer scheme, its issuer is
  `https://api.botframework.com`, its audience is the bot's app id (our managed identity's client id,
  TEAMS_BOT_APP_ID), it has not expired (5 minutes of clock skew), it is signed with RS256 by a listed key, and
  its service URL claim equals the `serviceUrl` at the root of the activity.
The page answers a failed check with 403, and so do we (extensions/bot_messages.py), although the Bot Framework
SDK's own endpoint answers 401 (botbuilder-python `CloudAdapter.process`). Either way nothing is done.
The page writes the claim "serviceUrl"; the SDKs read "serviceurl" (`AuthenticationConstants.SERVICE_URL_CLAIM`):
we accept either spelling. The token is never logged or kept.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from .errors import ChannelRejected, SigningKeysUnavailable
from .jwt_header import ALGORITHM, bearer_and_kid
from .settings import Settings

ISSUER = "https://api.botframework.com"
LEEWAY_S = 300  # "Industry-standard clock-skew is 5 minutes."
KEYS_TTL_S = 24 * 3600
MIN_REFRESH_INTERVAL_S = 60  # an unknown kid must not let anyone make us hammer the metadata endpoint
SERVICE_URL_CLAIMS = ("serviceurl", "serviceUrl")


@dataclass(frozen=True)
class ChannelKey:
    key: jwt.PyJWK
    endorsements: frozenset[str]


@dataclass(frozen=True)
class ChannelToken:
    """A token whose signature, issuer, audience and lifetime checked out; the activity is checked next."""

    claims: dict[str, Any]
    endorsements: frozenset[str]

    @property
    def service_url(self) -> str | None:
        for name in SERVICE_URL_CLAIMS:
            value = self.claims.get(name)
            if isinstance(value, str):
                return value
        return None


class ChannelKeys:
    """The Bot Connector's signing keys with their endorsements, read from its OpenID metadata and cached."""

    def __init__(self, metadata_url: str, http: httpx.AsyncClient):
        self._metadata_url = metadata_url
        self._http = http
        self._keys: dict[str, ChannelKey] = {}
        self._fetched_at = float("-inf")  # never: monotonic time may start near 0 on a fresh instance
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        try:
            metadata = (await self._http.get(self._metadata_url)).raise_for_status().json()
            jwks = (await self._http.get(metadata["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise SigningKeysUnavailable(f"cannot read the Bot Connector's signing keys: {exc}") from exc
        if ALGORITHM not in (metadata.get("id_token_signing_alg_values_supported") or [ALGORITHM]):
            raise SigningKeysUnavailable(f"the Bot Connector's metadata no longer lists {ALGORITHM}")
        keys = {}
        for entry in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            try:
                key = jwt.PyJWK(entry, algorithm=ALGORITHM)
            except jwt.PyJWTError:
                continue
            endorsements = entry.get("endorsements")
            listed = endorsements if isinstance(endorsements, list) else []
            keys[entry["kid"]] = ChannelKey(key, frozenset(e for e in listed if isinstance(e, str)))
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> ChannelKey | None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > KEYS_TTL_S or (kid not in self._keys and age >= MIN_REFRESH_INTERVAL_S):
                await self._refresh()
            return self._keys.get(kid)


class ChannelVerifier:
    """Decides whether a request to /api/messages comes from the Bot Connector for our bot and this activity."""

    def __init__(self, settings: Settings, keys: ChannelKeys):
        # The bot's app id is our user-assigned identity's client id (notify/factory.py falls back the same way).
        self._app_id = settings.teams_bot_app_id or settings.managed_identity_client_id or ""
        self._keys = keys

    async def verify(self, authorization: str | None) -> ChannelToken:
        """Steps 1-6 of the page: everything that does not need the activity."""
        if not self._app_id:
            raise ChannelRejected("TEAMS_BOT_APP_ID is not set: no token can be verified")
        token, kid = bearer_and_kid(authorization, ChannelRejected)
        key = await self._keys.key(kid)
        if key is None:
            raise ChannelRejected("the token's signing key is not one of the Bot Connector's")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self._app_id,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise ChannelRejected(f"the token is not valid: {exc}") from None
        return ChannelToken(claims, key.endorsements)

    @staticmethod
    def check_activity(token: ChannelToken, service_url: str, channel_id: str) -> None:
        """Step 7 and the endorsement: the token was issued for this activity's serviceUrl and channel."""
        if token.service_url != service_url:
            raise ChannelRejected("the token's serviceUrl claim does not match the activity's serviceUrl")
        if channel_id not in token.endorsements:
            raise ChannelRejected(f"the token's signing key is not endorsed for channel {channel_id!r}")
