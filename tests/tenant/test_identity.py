"""The managed-identity endpoint, OIDC metadata and JWKS, driven through azure-identity and PyJWT."""

from __future__ import annotations

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ManagedIdentityCredential

from local.tenant import TenantServer
from tests.conftest import F


async def test_managed_identity_credential_gets_a_graph_token_with_the_function_apps_roles(tenant_env: TenantServer):
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token("https://graph.microsoft.com/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appid"] == F.APP["func"][0]
    assert claims["idtyp"] == "app"
    assert "UserAuthMethod-TAP.ReadWrite.All" in claims["roles"]
    assert "UserAuthenticationMethod.ReadWrite.All" not in claims["roles"]  # least privilege: per-method only


async def test_a_user_assigned_identity_is_chosen_by_client_id(tenant_env: TenantServer):
    async with ManagedIdentityCredential(client_id=F.APP["limited"][0]) as credential:
        token = await credential.get_token("https://graph.microsoft.com/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["appid"] == F.APP["limited"][0]
    assert claims["roles"] == ["User.Read.All"]


async def test_a_wrong_identity_header_is_refused(tenant_env: TenantServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError):
        async with ManagedIdentityCredential() as credential:
            await credential.get_token("https://graph.microsoft.com/.default")


async def test_tokens_verify_against_the_published_jwks_with_the_v1_issuer(tenant_env: TenantServer):
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token("api://mfa-reset-extension/.default")
    tid = tenant_env.state.tenant_id
    config = httpx.get(f"{tenant_env.url}/{tid}/v2.0/.well-known/openid-configuration").json()
    signing = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(token.token)
    claims = jwt.decode(
        token.token,
        signing.key,
        algorithms=["RS256"],
        audience="api://mfa-reset-extension",
        issuer=f"https://sts.windows.net/{tid}/",
    )
    assert claims["tid"] == tid
    assert "roles" not in claims


async def test_a_token_for_a_resource_the_tenant_does_not_know_is_refused_with_aadsts500011(tenant_env: TenantServer):
    """A typo in CALLOUT_AUDIENCE or an app never registered fails as Entra fails it, not with a working token."""
    async with ManagedIdentityCredential() as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
            await credential.get_token("api://no-such-app/.default")


async def test_an_app_registered_through_graph_becomes_a_token_audience(tenant_env: TenantServer):
    """Once /applications holds an app with an identifier URI, tokens can be issued for it."""
    tenant_env.state.extras.setdefault("registrations", {})["obj-1"] = {
        "id": "obj-1",
        "appId": "6b1c2d3e-0000-4000-8000-0000000000f1",
        "identifierUris": ["api://contoso/new-api"],
    }
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token("api://contoso/new-api/.default")
    assert jwt.decode(token.token, options={"verify_signature": False})["aud"] == "api://contoso/new-api"
