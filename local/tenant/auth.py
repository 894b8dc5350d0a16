"""Identity for the local tenant: signing keys, issued tokens, the managed-identity endpoint, OIDC metadata
and JWKS, and the permission check every Graph route makes.

Documentation followed:
- Managed identity REST protocol for App Service and Functions (IDENTITY_ENDPOINT, X-IDENTITY-HEADER,
  api-version 2019-08-01, response access_token/expires_on/resource/token_type/client_id):
  https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
- Access token claims (aud, iss, iat/nbf/exp, appid/azp, idtyp, oid, roles, tid, ver):
  https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference
- OpenID Connect discovery document and signing keys (jwks_uri):
  https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
- Graph's 401 InvalidAuthenticationToken and 403 Authorization_RequestDenied:
  https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .appkeys import CONFIG, STATE
from .errors import GraphError, graph_error
from .state import TenantState

GRAPH_AUDIENCES = (
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
)
TOKEN_LIFETIME_S = 3600
LEEWAY_S = 300
# Microsoft's own resources, whose service principals every tenant has.
FIRST_PARTY_RESOURCES = (
    "https://api.botframework.com",
    "https://communication.azure.com",
    "https://storage.azure.com",
    "https://vault.azure.net",
    "https://management.azure.com",
    "https://monitor.azure.com",
)


def known_resource(state: TenantState, resource: str) -> bool:
    """Whether a token may be issued for `resource`: Entra answers AADSTS500011 ("The resource principal named X
    was not found in the tenant") for anything without a service principal in the tenant
    (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). Known here: Graph, Microsoft's own
    resources, the fixture's callout audience (the app an operator registers for the relay) and its applications,
    and the app registrations created through /applications (by app id or identifier URI)."""
    wanted = resource.rstrip("/").lower()
    names = {a.rstrip("/").lower() for a in (*GRAPH_AUDIENCES, *FIRST_PARTY_RESOURCES)}
    names.add(str(state.tenant.get("calloutAudience") or "").rstrip("/").lower())
    for app in state.applications.values():
        names.add(str(app.get("appId", "")).lower())
        names.update(r.rstrip("/").lower() for r in app.get("resourceRoles", {}))
    for registered in state.extras.get("registrations", {}).values():
        names.add(str(registered.get("appId", "")).lower())
        names.update(u.rstrip("/").lower() for u in registered.get("identifierUris", []))
    return wanted in names


@functools.lru_cache(maxsize=1)
def signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    """One RSA key per process (generation is the slow part), with its key id."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), uuid.uuid4().hex


def jwks() -> dict[str, Any]:
    key, kid = signing_key()
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "use": "sig", "alg": "RS256", "kty": "RSA"})
    return {"keys": [public]}


def v1_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def v2_issuer(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def issue_token(
    state: TenantState,
    claims: dict[str, Any],
    *,
    lifetime_s: int = TOKEN_LIFETIME_S,
    version: str = "1.0",
    headers: dict[str, Any] | None = None,
    key=None,
) -> str:
    """An RS256 token signed with the tenant key; iss/tid/iat/nbf/exp/ver are filled in unless given."""
    private, kid = signing_key()
    now = int(state.now().timestamp())
    issuer = v1_issuer(state.tenant_id) if version == "1.0" else v2_issuer(state.tenant_id)
    body = {
        "iss": issuer,
        "tid": state.tenant_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "ver": version,
        "uti": uuid.uuid4().hex[:22],
    }
    body.update(claims)
    return jwt.encode(body, key or private, algorithm="RS256", headers={"kid": kid, **(headers or {})})


def app_token(state: TenantState, app: dict[str, Any], resource: str) -> str:
    """An app-only token as Entra issues it to a service principal or managed identity for `resource`."""
    roles = (
        list(app.get("graphRoles", []))
        if resource.rstrip("/") in {a.rstrip("/") for a in GRAPH_AUDIENCES}
        else list(app.get("resourceRoles", {}).get(resource, []))
    )
    claims = {
        "aud": resource,
        "appid": app["appId"],
        "appidacr": "2",
        "idtyp": "app",
        "oid": app["servicePrincipalId"],
        "sub": app["servicePrincipalId"],
    }
    if roles:
        claims["roles"] = roles
    return issue_token(state, claims)


# --- Routes ---------------------------------------------------------------------------------------------


async def msi_token(request: web.Request) -> web.Response:
    """GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...[&client_id=...] with X-IDENTITY-HEADER."""
    state: TenantState = request.app[STATE]
    config = request.app[CONFIG]
    if request.headers.get("X-IDENTITY-HEADER") != config.identity_header:
        return web.json_response(
            {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER missing or wrong"}, status=400
        )
    if request.query.get("api-version") != "2019-08-01":
        return web.json_response(
            {"error": "invalid_request", "error_description": "api-version must be 2019-08-01"}, status=400
        )
    resource = request.query.get("resource")
    if not resource:
        return web.json_response({"error": "invalid_request", "error_description": "resource is required"}, status=400)
    resource = resource.removesuffix("/.default")
    client_id = request.query.get("client_id") or config.managed_identity_client_id
    app = state.applications.get(client_id)
    principal_id = request.query.get("principal_id")
    if principal_id:
        app = next((a for a in state.applications.values() if a.get("servicePrincipalId") == principal_id), None)
    if app is None or app.get("kind") != "managedIdentity":
        return web.json_response({"error": "invalid_request", "error_description": "Identity not found"}, status=400)
    if not known_resource(state, resource):
        description = (
            f"AADSTS500011: The resource principal named {resource} was not found in the tenant named "
            f"{state.tenant.get('displayName') or state.tenant_id}. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the tenant."
        )
        return web.json_response({"error": "invalid_resource", "error_description": description}, status=400)
    token = app_token(state, app, resource)
    expires_on = int(state.now().timestamp()) + TOKEN_LIFETIME_S
    return web.json_response(
        {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": app["appId"],
        }
    )


async def openid_configuration(request: web.Request) -> web.Response:
    state: TenantState = request.app[STATE]
    tenant = request.match_info.get("tenant", state.tenant_id)
    base = str(request.url.origin())
    v2 = request.path.startswith(f"/{tenant}/v2.0/")
    issuer = v2_issuer(state.tenant_id) if v2 else v1_issuer(state.tenant_id)
    return web.json_response(
        {
            "issuer": issuer,
            "jwks_uri": f"{base}/{tenant}/discovery/{'v2.0/' if v2 else ''}keys",
            "token_endpoint": f"{base}/{tenant}/oauth2/{'v2.0/' if v2 else ''}token",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/{'v2.0/' if v2 else ''}authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "subject_types_supported": ["pairwise"],
            "tenant_region_scope": "EU",
        }
    )


async def keys(request: web.Request) -> web.Response:
    return web.json_response(jwks())


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/msi/token", msi_token)
    for prefix in ("/{tenant}",):
        r.add_get(prefix + "/.well-known/openid-configuration", openid_configuration)
        r.add_get(prefix + "/v2.0/.well-known/openid-configuration", openid_configuration)
        r.add_get(prefix + "/discovery/keys", keys)
        r.add_get(prefix + "/discovery/v2.0/keys", keys)


# --- Graph's check -------------------------------------------------------------------------------------


def caller(request: web.Request) -> dict[str, Any]:
    """The verified claims of a Graph call's bearer token, or GraphError 401."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    state: TenantState = request.app[STATE]
    private, _ = signing_key()
    try:
        claims = jwt.decode(
            header[7:],
            private.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_AUDIENCES),
            issuer=[v1_issuer(state.tenant_id), v2_issuer(state.tenant_id)],
            # Lifetimes are checked below against the tenant clock, which the control API can move.
            # PyJWT also refuses an iat in the future by the real clock: off too, or tokens minted after the clock
            # moved forward would be refused.
            options={
                "require": ["exp", "nbf", "aud", "iss"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise GraphError(401, "InvalidAuthenticationToken", f"Access token validation failure. {exc}") from None
    now = state.now().timestamp()
    if now > float(claims["exp"]) + LEEWAY_S or now < float(claims["nbf"]) - LEEWAY_S:
        raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
    return claims


def authorize(request: web.Request, permissions: Iterable[str]) -> dict[str, Any]:
    """Verify the caller and require at least one of `permissions` in its app roles (or delegated scp)."""
    claims = caller(request)
    granted = set(claims.get("roles", [])) | set(claims.get("scp", "").split())
    if not granted.intersection(permissions):
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    return claims


def graph_error_middleware_response(exc: GraphError, request: web.Request) -> web.Response:
    return graph_error(exc.status, exc.code, exc.message, request, exc.headers)
