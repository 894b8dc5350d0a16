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

from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from .errors import ChannelRejected
from .jwt_header import ALGORITHM, bearer_and_kid
from .settings import Settings
from .signing_keys import OpenIdKeys

ISSUER = "https://api.botframework.com"
LEEWAY_S = 300  # "Industry-standard clock-skew is 5 minutes."
SERVICE_URL_CLAIMS = ("serviceurl", "serviceUrl")


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


class ChannelKeys(OpenIdKeys):
    """The Bot Connector's signing keys with their endorsements, from its OpenID metadata."""

    def __init__(self, metadata_url: str, http: httpx.AsyncClient):
        super().__init__(metadata_url, http, "the Bot Connector's")


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
