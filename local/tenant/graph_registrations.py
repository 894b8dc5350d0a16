"""App registrations of the local tenant: applications, their federated identity credentials, and creating a
service principal for one (provision/ makes the callout-audience app and the Easy Auth app with them).

A created service principal joins the tenant's `applications` (keyed by appId, like the fixture's), so it lists
under /servicePrincipals, can be granted app roles, and resolves as a directory object.

Documentation followed (Graph v1.0):
- application resource type (id, appId, displayName, signInAudience, identifierUris, web {redirectUris,
  implicitGrantSettings {enableIdTokenIssuance, enableAccessTokenIssuance}}, passwordCredentials, keyCredentials):
  https://learn.microsoft.com/graph/api/resources/application and
  https://learn.microsoft.com/graph/api/resources/webapplication
- Create application: https://learn.microsoft.com/graph/api/application-post-applications (201; application
  permission Application.ReadWrite.OwnedBy least privileged, Application.ReadWrite.All higher). With OwnedBy the
  calling app becomes an owner of what it creates and may manage only what it owns
  (https://learn.microsoft.com/graph/permissions-reference#applicationreadwriteownedby).
- List applications ($filter displayName eq, appId eq, identifierUris/any(x:x eq '...')):
  https://learn.microsoft.com/graph/api/application-list (Application.Read.All least; OwnedBy may list all, as the
  serviceprincipal-get page notes); application-get; application-update (PATCH → 204; OwnedBy least).
- Identifier URI formats: https://learn.microsoft.com/entra/identity-platform/identifier-uri-restrictions
  (absolute api:// or https:// URIs; a tenant's app management policy may block api://<string> without a tenant
  identifier — not emulated). A URI another application already holds is refused with 400 Request_BadRequest
  "Another object with the same value for property identifierUris already exists." (Graph's observed answer;
  the pages do not spell the error out).
- federatedIdentityCredential resource type (name, issuer, subject, audiences, description):
  https://learn.microsoft.com/graph/api/resources/federatedidentitycredential ; Create:
  https://learn.microsoft.com/graph/api/application-post-federatedidentitycredentials (201; Application.ReadWrite.
  OwnedBy least; audiences required, one value, api://AzureADTokenExchange for Entra ID; at most 20 per app;
  name unique per application, at most 120 characters, immutable); List: application-list-federatedidentitycredentials
  (Application.Read.All least); Update: federatedidentitycredential-update (PATCH → 204, name immutable).
- Create servicePrincipal: https://learn.microsoft.com/graph/api/serviceprincipal-post-serviceprincipals
  ({appId} → 201; Application.ReadWrite.OwnedBy least, Application.ReadWrite.All higher; with OwnedBy the backing
  application must be in the local tenant).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .auth import authorize
from .errors import GraphError, bad_request, forbidden, json_object, not_found
from .gov_common import VERSIONS, collection, entity, filtered, new_id, now, public, required, state_of

APP_READ = (
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
APP_WRITE = ("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All", "Directory.ReadWrite.All")
OWNED_ONLY = "Application.ReadWrite.OwnedBy"
SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)
APP_PROPERTIES = {
    "displayName",
    "description",
    "notes",
    "signInAudience",
    "identifierUris",
    "web",
    "tags",
    "requiredResourceAccess",
}
WEB_PROPERTIES = {"redirectUris", "homePageUrl", "logoutUrl", "implicitGrantSettings", "redirectUriSettings"}
FIC_PROPERTIES = {"name", "issuer", "subject", "audiences", "description"}
MAX_FICS = 20
APP_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#applications"
SP_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals"
DUPLICATE_URI = "Another object with the same value for property identifierUris already exists."


def registrations(request: web.Request) -> dict[str, dict[str, Any]]:
    """Application objects by object id (the fixture's `applications` are service principals with their apps)."""
    return state_of(request).extras.setdefault("registrations", {})


def _missing(object_id: str) -> GraphError:
    return not_found(
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present."
    )


def _app_json(app: dict[str, Any]) -> dict[str, Any]:
    return public(app, {"federatedIdentityCredentials"})


def _registration(request: web.Request) -> dict[str, Any]:
    found = registrations(request).get(request.match_info["id"])
    if found is None:
        raise _missing(request.match_info["id"])
    return found


def _may_write(request: web.Request, claims: dict[str, Any], app: dict[str, Any]) -> None:
    """Application.ReadWrite.OwnedBy alone reaches only the applications the caller owns."""
    granted = set(claims.get("roles", [])) | set(claims.get("scp", "").split())
    if granted & {"Application.ReadWrite.All", "Directory.ReadWrite.All"}:
        return
    if OWNED_ONLY in granted and claims.get("oid") in app.get("_owners", []):
        return
    raise forbidden()


def _is_absolute_uri(value: Any) -> bool:
    if not isinstance(value, str) or "://" not in value:
        return False
    scheme, _, rest = value.partition("://")
    return bool(scheme) and scheme.isascii() and scheme.replace("+", "").replace("-", "").isalnum() and bool(rest)


def _validate_app(request: web.Request, body: dict[str, Any], own_id: str | None) -> None:
    if "displayName" in body and (not isinstance(body["displayName"], str) or not body["displayName"].strip()):
        raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
    audience = body.get("signInAudience")
    if audience is not None and audience not in SIGN_IN_AUDIENCES:
        raise bad_request("Invalid value specified for property 'signInAudience' of resource 'Application'.")
    uris = body.get("identifierUris")
    if uris is not None:
        if not isinstance(uris, list) or not all(_is_absolute_uri(u) for u in uris):
            raise bad_request("Invalid value specified for property 'identifierUris' of resource 'Application'.")
        lowered = {u.lower().rstrip("/") for u in uris}
        for other in registrations(request).values():
            if other["id"] != own_id and lowered & {u.lower().rstrip("/") for u in other.get("identifierUris", [])}:
                raise bad_request(DUPLICATE_URI)
    web_config = body.get("web")
    if web_config is not None:
        if not isinstance(web_config, dict) or set(web_config) - WEB_PROPERTIES:
            raise bad_request("Invalid value specified for property 'web' of resource 'Application'.")
        for uri in web_config.get("redirectUris") or []:
            # Redirect URIs must use https, except for localhost (reply-url restrictions).
            secure = isinstance(uri, str) and (uri.startswith("https://") or uri.startswith("http://localhost"))
            if not secure:
                raise bad_request("Invalid value specified for property 'web.redirectUris' of resource 'Application'.")
        grants = web_config.get("implicitGrantSettings")
        if grants is not None and (
            not isinstance(grants, dict)
            or set(grants) - {"enableIdTokenIssuance", "enableAccessTokenIssuance"}
            or not all(isinstance(v, bool) for v in grants.values())
        ):
            raise bad_request("Invalid value specified for property 'web.implicitGrantSettings'.")


def _merge_web(current: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    merged = {
        "homePageUrl": None,
        "logoutUrl": None,
        "redirectUris": [],
        "implicitGrantSettings": {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False},
        **(current or {}),
    }
    for key, value in patch.items():
        if key == "implicitGrantSettings":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


async def list_apps(request: web.Request) -> web.Response:
    authorize(request, APP_READ)
    return collection(APP_CONTEXT, filtered(request, [_app_json(a) for a in registrations(request).values()]))


async def get_app(request: web.Request) -> web.Response:
    authorize(request, APP_READ)
    return entity(APP_CONTEXT + "/$entity", _app_json(_registration(request)))


async def create_app(request: web.Request) -> web.Response:
    claims = authorize(request, APP_WRITE)
    body = await json_object(request, APP_PROPERTIES)
    required(body, "displayName")
    _validate_app(request, body, None)
    created = {
        "id": new_id(),
        "appId": str(uuid.uuid4()),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "notes": body.get("notes"),
        "signInAudience": body.get("signInAudience", "AzureADMyOrg"),
        "identifierUris": list(body.get("identifierUris") or []),
        "web": _merge_web(None, body.get("web") or {}),
        "tags": list(body.get("tags") or []),
        "requiredResourceAccess": list(body.get("requiredResourceAccess") or []),
        "passwordCredentials": [],
        "keyCredentials": [],
        "publisherDomain": state_of(request).tenant.get("defaultDomain"),
        "createdDateTime": now(request),
        "_owners": [claims.get("oid")],
        "federatedIdentityCredentials": {},
    }
    registrations(request)[created["id"]] = created
    return entity(APP_CONTEXT + "/$entity", _app_json(created), 201)


async def update_app(request: web.Request) -> web.Response:
    claims = authorize(request, APP_WRITE)
    app = _registration(request)
    _may_write(request, claims, app)
    body = await json_object(request, APP_PROPERTIES)
    _validate_app(request, body, app["id"])
    for key, value in body.items():
        # A complex property is replaced as a whole, as PATCH does in Graph.
        app[key] = _merge_web(None, value) if key == "web" else value
    return web.Response(status=204)


# --- federated identity credentials -----------------------------------------------------------------------------


def _validate_fic(body: dict[str, Any], app: dict[str, Any], own_id: str | None) -> None:
    audiences = body.get("audiences")
    if audiences is not None and (
        not isinstance(audiences, list) or len(audiences) != 1 or not isinstance(audiences[0], str)
    ):
        raise bad_request("Invalid value specified for property 'audiences': exactly one audience is allowed.")
    for key in ("issuer", "subject"):
        if key in body and (not isinstance(body[key], str) or not body[key].strip()):
            raise bad_request(
                f"Invalid value specified for property '{key}' of resource 'FederatedIdentityCredential'."
            )
    if "issuer" in body and not body["issuer"].startswith("https://"):
        raise bad_request("Invalid value specified for property 'issuer': the issuer must be an https URL.")
    others = [f for f in app["federatedIdentityCredentials"].values() if f["id"] != own_id]
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not 3 <= len(name) <= 120 or not all(c.isalnum() or c in "-_" for c in name):
            raise bad_request("Invalid value specified for property 'name' of resource 'FederatedIdentityCredential'.")
        if any(f["name"].lower() == name.lower() for f in others):
            raise bad_request(f"FederatedIdentityCredential with name {name} already exists.")


async def list_fics(request: web.Request) -> web.Response:
    authorize(request, APP_READ)
    app = _registration(request)
    context = APP_CONTEXT + f"('{app['id']}')/federatedIdentityCredentials"
    return collection(context, filtered(request, list(app["federatedIdentityCredentials"].values())))


async def create_fic(request: web.Request) -> web.Response:
    claims = authorize(request, APP_WRITE)
    app = _registration(request)
    _may_write(request, claims, app)
    body = await json_object(request, FIC_PROPERTIES)
    required(body, "name", "issuer", "subject", "audiences")
    _validate_fic(body, app, None)
    existing = app["federatedIdentityCredentials"]
    if len(existing) >= MAX_FICS:
        raise bad_request(f"An application can have at most {MAX_FICS} federated identity credentials.")
    if any(f["issuer"] == body["issuer"] and f["subject"] == body["subject"] for f in existing.values()):
        raise bad_request("A federated identity credential with this issuer and subject already exists.")
    created = {
        "id": new_id(),
        "name": body["name"],
        "issuer": body["issuer"],
        "subject": body["subject"],
        "audiences": list(body["audiences"]),
        "description": body.get("description"),
    }
    existing[created["id"]] = created
    context = APP_CONTEXT + f"('{app['id']}')/federatedIdentityCredentials/$entity"
    return entity(context, created, 201)


async def update_fic(request: web.Request) -> web.Response:
    claims = authorize(request, APP_WRITE)
    app = _registration(request)
    _may_write(request, claims, app)
    fic = app["federatedIdentityCredentials"].get(request.match_info["fid"])
    if fic is None:
        raise _missing(request.match_info["fid"])
    body = await json_object(request, FIC_PROPERTIES)
    if "name" in body and body["name"] != fic["name"]:
        raise bad_request("The property 'name' of a federated identity credential cannot be changed.")
    _validate_fic(body, app, fic["id"])
    fic.update(body)
    return web.Response(status=204)


# --- service principals for registered applications ------------------------------------------------------------


async def create_sp(request: web.Request) -> web.Response:
    claims = authorize(request, APP_WRITE)
    body = await json_object(request)
    required(body, "appId")
    state = state_of(request)
    app = next((a for a in registrations(request).values() if a["appId"] == body["appId"]), None)
    if app is None:
        raise bad_request(
            f"The appId '{body['appId']}' of the service principal does not reference a valid application object."
        )
    _may_write(request, claims, app)
    if body["appId"] in state.applications:
        raise GraphError(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the service principal name "
            f"{body['appId']} is already in use.",
        )
    principal = {
        "appId": app["appId"],
        "servicePrincipalId": new_id(),
        "displayName": app["displayName"],
        "kind": "application",
        "graphRoles": [],
    }
    state.applications[app["appId"]] = principal
    created = {
        "id": principal["servicePrincipalId"],
        "appId": app["appId"],
        "displayName": app["displayName"],
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "servicePrincipalNames": [app["appId"], *app.get("identifierUris", [])],
        "appRoles": [],
    }
    return entity(SP_CONTEXT + "/$entity", created, 201)


def setup(app: web.Application) -> None:
    r = app.router
    for version in VERSIONS:
        r.add_get(f"{version}/applications", list_apps)
        r.add_post(f"{version}/applications", create_app)
        r.add_get(f"{version}/applications/{{id}}", get_app)
        r.add_patch(f"{version}/applications/{{id}}", update_app)
        r.add_get(f"{version}/applications/{{id}}/federatedIdentityCredentials", list_fics)
        r.add_post(f"{version}/applications/{{id}}/federatedIdentityCredentials", create_fic)
        r.add_patch(f"{version}/applications/{{id}}/federatedIdentityCredentials/{{fid}}", update_fic)
        r.add_post(f"{version}/servicePrincipals", create_sp)
