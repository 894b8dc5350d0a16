"""The caller verifier accepts what Entra really issues (v1 and v2 forms, skew) and refreshes rotated keys."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from extensions.caller_token import LEEWAY_S, CallerVerifier, SigningKeys
from extensions.errors import CallerRejected
from extensions.settings import Settings
from local.tenant import EM_APP_ID, TenantServer
from local.tenant.auth import issue_token
from tests.extensions.tokens import AUDIENCE, em_claims

RELAY_OID = "a1f0c0de-0000-4000-8000-0000000000a3"


def settings_for(tenant_id: str, authority: str, callers: str = EM_APP_ID) -> Settings:
    return Settings(
        TENANT_ID=tenant_id, AUTHORITY_HOST=authority, CALLOUT_AUDIENCE=AUDIENCE, CALLOUT_ALLOWED_CALLERS=callers
    )


@pytest.fixture
async def verifier(tenant: TenantServer) -> AsyncIterator[CallerVerifier]:
    settings = settings_for(tenant.state.tenant_id, tenant.url, f"{EM_APP_ID},{RELAY_OID}")
    async with httpx.AsyncClient() as http:
        yield CallerVerifier(settings, SigningKeys(settings, http))


async def test_a_v1_token_from_em_is_accepted_with_its_app_id(verifier: CallerVerifier, tenant: TenantServer):
    caller = await verifier.verify(f"Bearer {issue_token(tenant.state, em_claims())}")
    assert caller.app_id == EM_APP_ID


async def test_a_v2_token_names_its_caller_in_azp(verifier: CallerVerifier, tenant: TenantServer):
    claims = em_claims(azp=EM_APP_ID, appid=None)
    token = issue_token(tenant.state, {k: v for k, v in claims.items() if v is not None}, version="2.0")
    caller = await verifier.verify(f"Bearer {token}")
    assert caller.app_id == EM_APP_ID


async def test_a_relay_identity_is_allowed_by_its_object_id(verifier: CallerVerifier, tenant: TenantServer):
    token = issue_token(tenant.state, em_claims(appid="a1f0c0de-0000-4000-8000-000000000003", oid=RELAY_OID))
    caller = await verifier.verify(f"Bearer {token}")
    assert caller.object_id == RELAY_OID


async def test_clock_skew_under_five_minutes_is_tolerated(verifier: CallerVerifier, tenant: TenantServer):
    now = int(time.time())
    token = issue_token(tenant.state, em_claims(exp=now - 120, iat=now - 3700, nbf=now - 3700))
    assert (await verifier.verify(f"Bearer {token}")).app_id == EM_APP_ID


async def test_expiry_beyond_five_minutes_is_refused(verifier: CallerVerifier, tenant: TenantServer):
    now = int(time.time())
    token = issue_token(tenant.state, em_claims(exp=now - 360, iat=now - 4000, nbf=now - 4000))
    with pytest.raises(CallerRejected, match="expired"):
        await verifier.verify(f"Bearer {token}")


def test_the_verifier_refuses_to_run_without_an_allow_list():
    settings = settings_for("t", "http://127.0.0.1:1", callers="")
    with pytest.raises(ValueError, match="CALLOUT_ALLOWED_CALLERS"):
        CallerVerifier(settings, SigningKeys(settings, httpx.AsyncClient()))


async def test_a_rotated_key_is_fetched_once_when_its_kid_first_appears():
    """Keys are cached; a token signed with a new kid makes the verifier re-read the JWKS once."""
    tenant_id = "7c3a1f0e-5b2d-4e8a-9f61-0a2b3c4d5e6f"
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    published = {"keys": [_jwk(old, "old")]}
    fetches = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(request.url.path)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "http://idp.test/keys"})
        return httpx.Response(200, json=published)

    settings = settings_for(tenant_id, "http://idp.test")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = SigningKeys(settings, http)
        verifier = CallerVerifier(settings, keys)
        await verifier.verify(f"Bearer {_token(old, 'old', tenant_id)}")
        await verifier.verify(f"Bearer {_token(old, 'old', tenant_id)}")
        assert fetches.count("/keys") == 1
        published["keys"].append(_jwk(new, "new"))
        keys._fetched_at -= 120  # the refresh floor (60 s) has passed
        await verifier.verify(f"Bearer {_token(new, 'new', tenant_id)}")
        assert fetches.count("/keys") == 2


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    return {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


def _token(key: rsa.RSAPrivateKey, kid: str, tenant_id: str) -> str:
    now = int(time.time())
    claims = {**em_claims(), "iss": f"https://sts.windows.net/{tenant_id}/", "tid": tenant_id}
    claims.update(iat=now, nbf=now, exp=now + 600)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_a_token_presented_again_is_not_checked_again(
    verifier: CallerVerifier, tenant: TenantServer, monkeypatch: pytest.MonkeyPatch
):
    """EM reuses its token for an hour: the same bytes are verified once, then accepted from the cache."""
    decoded = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    token = issue_token(tenant.state, em_claims())
    callers = [await verifier.verify(f"Bearer {token}") for _ in range(3)]
    assert [c.app_id for c in callers] == [EM_APP_ID] * 3
    assert len(decoded) == 1


async def test_a_cached_token_is_checked_in_full_again_once_past_its_expiry(
    verifier: CallerVerifier, tenant: TenantServer, monkeypatch: pytest.MonkeyPatch
):
    """The cache answers only until exp plus the five-minute leeway, the point where the full check starts refusing
    (test_expiry_beyond_five_minutes_is_refused); past it the token goes through jwt.decode again."""
    exp = int(time.time()) + 120  # so exp + leeway comes before the 10-minute re-check
    token = issue_token(tenant.state, em_claims(exp=exp))
    decoded = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    await verifier.verify(f"Bearer {token}")
    # The cache's own clock, moved (a second before, then after the deadline) instead of waiting for it.
    monkeypatch.setattr("extensions.caller_token.time.time", lambda: exp + LEEWAY_S - 1)
    await verifier.verify(f"Bearer {token}")
    assert len(decoded) == 1
    monkeypatch.setattr("extensions.caller_token.time.time", lambda: exp + LEEWAY_S + 1)
    await verifier.verify(f"Bearer {token}")  # jwt.decode keeps the real clock, so the full check passes here
    assert len(decoded) == 2


async def test_a_token_altered_after_a_good_one_was_cached_is_refused(verifier: CallerVerifier, tenant: TenantServer):
    """The cache is keyed on the exact bytes: a forged signature on the same claims is checked and refused."""
    token = issue_token(tenant.state, em_claims())
    await verifier.verify(f"Bearer {token}")
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-6]}AAAAAA"
    with pytest.raises(CallerRejected):
        await verifier.verify(f"Bearer {forged}")


async def test_keys_are_fetched_on_an_instance_booted_seconds_ago(
    verifier: CallerVerifier, tenant: TenantServer, monkeypatch: pytest.MonkeyPatch
):
    """A fresh instance's monotonic clock can read a few seconds: the first token still gets its keys fetched."""
    monkeypatch.setattr("extensions.caller_token.time.monotonic", lambda: 5.0)
    caller = await verifier.verify(f"Bearer {issue_token(tenant.state, em_claims())}")
    assert caller.app_id == EM_APP_ID
