"""Verifies the bearer token of a callout: RS256 from the tenant's JWKS, issuer, audience, tenant, lifetime,
and a caller on the allow-list.

Follows https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens (signature via the
OIDC metadata's jwks_uri, iss in v1 `https://sts.windows.net/{tid}/` or v2 `.../{tid}/v2.0` form, aud, tid,
exp/nbf) and https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference (appid in v1,
azp in v2, oid of the calling service principal).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from .errors import CallerRejected
from .jwt_header import bearer_and_kid
from .settings import Settings
from .signing_keys import OpenIdKeys

LEEWAY_S = 300  # clock skew we tolerate on exp/nbf (at most 5 minutes)
# A caller (EM, the relay's managed identity) presents the same token for up to an hour; its RSA check costs
# ~0.25 ms of the callout's CPU. The exact bytes verified before are accepted again until they expire, for at
# most REVERIFY_AFTER_S (so a key removed from the JWKS stops being honoured soon). Refusals are never cached.
VERIFIED_CACHE_SIZE = 256
REVERIFY_AFTER_S = 600


@dataclass(frozen=True)
class VerifiedCaller:
    app_id: str | None
    object_id: str | None
    tenant_id: str
    claims: dict[str, Any]


class SigningKeys(OpenIdKeys):
    """The tenant's signing keys, from its v2.0 OIDC metadata."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        metadata = f"{settings.authority_host.rstrip('/')}/{settings.tenant_id}/v2.0/.well-known/openid-configuration"
        super().__init__(metadata, http, "the tenant's")


class CallerVerifier:
    """Decides whether a callout's Authorization header comes from an allowed caller of our tenant."""

    def __init__(self, settings: Settings, keys: SigningKeys):
        if not settings.tenant_id or not settings.callout_audience or not settings.callout_allowed_callers:
            raise ValueError("TENANT_ID, CALLOUT_AUDIENCE and CALLOUT_ALLOWED_CALLERS must be set to verify callers")
        self._tenant = settings.tenant_id.lower()
        self._audiences = [settings.callout_audience]
        self._issuers = [
            f"https://sts.windows.net/{self._tenant}/",
            f"https://login.microsoftonline.com/{self._tenant}/v2.0",
        ]
        self._allowed = {caller.lower() for caller in settings.callout_allowed_callers}
        self._keys = keys
        # sha256 of the token → (the caller, wall-clock deadline); holds digests, never tokens.
        self._verified: OrderedDict[bytes, tuple[VerifiedCaller, float]] = OrderedDict()

    async def verify(self, authorization: str | None) -> VerifiedCaller:
        token, kid = bearer_and_kid(authorization, CallerRejected)
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            if time.time() < cached[1]:
                self._verified.move_to_end(digest)
                return cached[0]
            del self._verified[digest]
        caller = await self._verify(token, kid)
        exp = caller.claims.get("exp")
        if isinstance(exp, (int, float)):
            # Until jwt.decode itself would refuse it (exp + leeway), and never longer than REVERIFY_AFTER_S.
            self._verified[digest] = (caller, min(exp + LEEWAY_S, time.time() + REVERIFY_AFTER_S))
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return caller

    async def _verify(self, token: str, kid: str) -> VerifiedCaller:
        key = await self._keys.key(kid)
        if key is None:
            raise CallerRejected("the token's signing key is not one of the tenant's")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=self._issuers,
                leeway=LEEWAY_S,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid"]},
            )
        except jwt.PyJWTError as exc:
            raise CallerRejected(f"the token is not valid: {exc}") from None
        if str(claims.get("tid", "")).lower() != self._tenant:
            raise CallerRejected("the token comes from another tenant")
        app_id = claims.get("appid") or claims.get("azp")
        object_id = claims.get("oid")
        presented = {str(value).lower() for value in (app_id, object_id) if value}
        if not presented & self._allowed:
            raise CallerRejected(f"caller {app_id or object_id} is not allowed to call this extension")
        return VerifiedCaller(app_id=app_id, object_id=object_id, tenant_id=self._tenant, claims=claims)
