"""Tokens for callout tests: genuine ones from the local tenant's key, and forgeries."""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.tenant import EM_APP_ID, TenantServer
from local.tenant.auth import issue_token, signing_key

AUDIENCE = "api://mfa-reset-extension"


def em_claims(**overrides: Any) -> dict[str, Any]:
    claims = {"aud": AUDIENCE, "appid": EM_APP_ID, "idtyp": "app", "oid": "a1f0c0de-0000-4000-8000-0000000000e1"}
    claims.update(overrides)
    return claims


def genuine(tenant: TenantServer, **overrides: Any) -> str:
    """A token EM would present: RS256 from the tenant key, v1 issuer, our audience, EM's app id."""
    return issue_token(tenant.state, em_claims(**overrides))


def _base(tenant: TenantServer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    tid = tenant.state.tenant_id
    body = {"iss": f"https://sts.windows.net/{tid}/", "tid": tid, "iat": now, "nbf": now, "exp": now + 3600}
    body.update(em_claims())
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def forged(tenant: TenantServer, case: str) -> str:
    """A token that must be refused, by name of what is wrong with it."""
    private, kid = signing_key()
    now = int(time.time())
    other_tenant = "0badc0de-0000-4000-8000-000000000000"
    if case == "alg-none":
        return jwt.encode(_base(tenant), None, algorithm="none", headers={"kid": kid})
    if case == "hs256-with-public-key":
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hs256_token(_base(tenant), pem, kid)
    if case == "bad-signature":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(_base(tenant), other, algorithm="RS256", headers={"kid": kid})
    if case == "unknown-kid":
        return jwt.encode(_base(tenant), private, algorithm="RS256", headers={"kid": "not-a-tenant-key"})
    if case == "no-kid":
        return jwt.encode(_base(tenant), private, algorithm="RS256")
    overrides = {
        "wrong-issuer": {"iss": "https://sts.windows.net/evil/"},
        "wrong-audience": {"aud": "api://something-else"},
        "wrong-tid": {"tid": other_tenant},
        "another-tenant": {"iss": f"https://sts.windows.net/{other_tenant}/", "tid": other_tenant},
        "expired": {"exp": now - 600, "iat": now - 4000, "nbf": now - 4000},
        "not-yet-valid": {"nbf": now + 900, "iat": now},
        "caller-not-allowed": {
            "appid": "a1f0c0de-0000-4000-8000-000000000002",
            "oid": "a1f0c0de-0000-4000-8000-0000000000a2",
        },
        "no-expiry": {"exp": None},
        "no-tid": {"tid": None},
        "graph-token": {"aud": "https://graph.microsoft.com"},
    }[case]
    return jwt.encode(_base(tenant, **overrides), private, algorithm="RS256", headers={"kid": kid})


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    # PyJWT refuses PEM-looking HMAC keys (the very attack); build the token by hand as an attacker would.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


FORGERIES = [
    "alg-none",
    "hs256-with-public-key",
    "bad-signature",
    "unknown-kid",
    "no-kid",
    "wrong-issuer",
    "wrong-audience",
    "wrong-tid",
    "another-tenant",
    "expired",
    "not-yet-valid",
    "caller-not-allowed",
    "no-expiry",
    "no-tid",
    "graph-token",
]
