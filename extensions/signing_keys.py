"""An issuer's RS256 signing keys, read from its OpenID metadata (`jwks_uri`) and cached: shared by the callout
verifier (Entra) and the bot endpoint (the Bot Connector), which differ only in where the metadata is."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import jwt

from .errors import SigningKeysUnavailable
from .jwt_header import ALGORITHM

KEYS_TTL_S = 24 * 3600  # keys rotate rarely; a new kid triggers a refresh anyway
MIN_REFRESH_INTERVAL_S = 60  # an unknown kid must not let anyone make us hammer the metadata endpoint


@dataclass(frozen=True)
class SigningKey:
    key: jwt.PyJWK
    # The channel ids a Bot Connector key may sign for (its JWKS `endorsements`); Entra keys list none.
    endorsements: frozenset[str] = field(default_factory=frozenset)


class OpenIdKeys:
    """Cached a day; read again when a token names a kid we do not know, at most once a minute."""

    def __init__(self, metadata_url: str, http: httpx.AsyncClient, whose: str):
        self._metadata_url = metadata_url
        self._http = http
        self._whose = whose  # "the tenant's", "the Bot Connector's": for the error messages
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = float("-inf")  # never: monotonic time may start near 0 on a fresh instance
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        try:
            metadata = (await self._http.get(self._metadata_url)).raise_for_status().json()
            jwks = (await self._http.get(metadata["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise SigningKeysUnavailable(f"cannot read {self._whose} signing keys: {exc}") from exc
        if ALGORITHM not in (metadata.get("id_token_signing_alg_values_supported") or [ALGORITHM]):
            raise SigningKeysUnavailable(f"{self._whose} metadata no longer lists {ALGORITHM}")
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
            keys[entry["kid"]] = SigningKey(key, frozenset(e for e in listed if isinstance(e, str)))
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> SigningKey | None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > KEYS_TTL_S or (kid not in self._keys and age >= MIN_REFRESH_INTERVAL_S):
                await self._refresh()
            return self._keys.get(kid)
