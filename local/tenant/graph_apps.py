"""Application permission routes of the local tenant: service principals, their app role assignments (application
permissions on Microsoft Graph) and Entitlement Management's catalog-scoped role assignments.

A granted Graph app role lands in the identity's `graphRoles`, so the next token the tenant issues carries it,
as Entra's tokens do once an assignment exists.

Documentation followed (Graph v1.0):
- List service principals ($filter appId eq / displayName eq): https://learn.microsoft.com/graph/api/serviceprincipal-list
  (application: Application.Read.All, higher Application.ReadWrite.All, Directory.Read.All); serviceprincipal-get.
- https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignments (app roles granted to a client
  service principal) and https://learn.microsoft.com/graph/api/serviceprincipal-post-approleassignments
  ({principalId, resourceId, appRoleId} → 201; application: AppRoleAssignment.ReadWrite.All and
  Application.Read.All); serviceprincipal-delete-approleassignments (→ 204).
- Entitlement management RBAC: https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignments
  (POST /roleManagement/entitlementManagement/roleAssignments {principalId, roleDefinitionId, appScopeId:
  "/AccessPackageCatalog/{id}"}; application: EntitlementManagement.ReadWrite.All) and
  https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments ($filter appScopeId eq, principalId eq).
  Built-in role ids: https://learn.microsoft.com/entra/id-governance/entitlement-management-delegate (table of
  entitlement management roles and their ids).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .auth import authorize
from .errors import GraphError, bad_request, json_object, not_found
from .gov_common import (
    EM_READ,
    EM_WRITE,
    VERSIONS,
    authorize_all,
    collection,
    em_of,
    entity,
    filtered,
    governance,
    new_id,
    now,
    required,
    state_of,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
_NS = uuid.UUID("2b0b8a43-6a3e-4b61-9d8e-6f1f5a9c0d11")
GRAPH_SP_ID = str(uuid.uuid5(_NS, GRAPH_APP_ID))
# serviceprincipal-get: Application.ReadWrite.OwnedBy may list and read every service principal too.
SP_READ = (
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
ASSIGN = ("AppRoleAssignment.ReadWrite.All",)
# Microsoft Graph's application permissions this tenant knows (plus any a fixture identity holds). The ids here
# are derived locally; real tenants have Microsoft's fixed ids, which is why provisioning looks roles up by value.
GRAPH_PERMISSIONS = [
    "User.Read.All",
    "User.ReadWrite.All",
    "User.RevokeSessions.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "AuditLog.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Policy.Read.All",
    "Policy.Read.AuthenticationMethod",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.ConditionalAccess",
    "EntitlementManagement.Read.All",
    "EntitlementManagement.ReadWrite.All",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "TeamsAppInstallation.ReadWriteSelfForUser.All",
    *(
        f"UserAuthMethod-{kind}.{access}.All"
        for kind in (
            "Phone",
            "Email",
            "Passkey",
            "MicrosoftAuthApp",
            "SoftwareOATH",
            "HardwareOATH",
            "WindowsHello",
            "TAP",
            "PlatformCred",
            "Password",
        )
        for access in ("Read", "ReadWrite")
    ),
]
# Entitlement management's built-in roles (entitlement-management-delegate).
EM_ROLES = {
    "ae79f266-94d4-4dab-b730-feca7e132178": "Catalog owner",
    "44272f93-9762-48e8-af59-1b5351b1d6b3": "Catalog reader",
    "7f480852-ebdc-47d4-87de-0d8498384a83": "Access package manager",
    "e2182095-804a-4656-ae11-64734e9b7ae5": "Access package assignment manager",
    "ba92d953-d8e0-4e39-a797-0cbedb0a89e8": "Catalog creator",
}
SP_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals"
RA_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#roleManagement/entitlementManagement/roleAssignments"


def role_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


def graph_roles(request: web.Request) -> dict[str, str]:
    """Graph's app roles, id → value."""
    names = set(GRAPH_PERMISSIONS)
    for app in state_of(request).applications.values():
        names.update(app.get("graphRoles", []))
    return {role_id(n): n for n in sorted(names)}


def _graph_sp(request: web.Request) -> dict[str, Any]:
    roles = [
        {
            "id": rid,
            "value": value,
            "displayName": value,
            "allowedMemberTypes": ["Application"],
            "isEnabled": True,
            "origin": "Application",
        }
        for rid, value in graph_roles(request).items()
    ]
    return {
        "id": GRAPH_SP_ID,
        "appId": GRAPH_APP_ID,
        "displayName": "Microsoft Graph",
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "appRoles": roles,
    }


def _sp(app: dict[str, Any]) -> dict[str, Any]:
    kind = {"managedIdentity": "ManagedIdentity"}.get(app.get("kind", ""), "Application")
    return {
        "id": app["servicePrincipalId"],
        "appId": app["appId"],
        "displayName": app.get("displayName"),
        "servicePrincipalType": kind,
        "accountEnabled": True,
        "appRoles": [],
    }


def _principals(request: web.Request) -> list[dict[str, Any]]:
    return [_graph_sp(request), *(_sp(a) for a in state_of(request).applications.values())]


def _app_by_sp(request: web.Request, sp_id: str) -> dict[str, Any] | None:
    return next((a for a in state_of(request).applications.values() if a.get("servicePrincipalId") == sp_id), None)


def _missing(object_id: str) -> GraphError:
    return not_found(
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present."
    )


async def list_sps(request: web.Request) -> web.Response:
    authorize(request, SP_READ)
    return collection(SP_CONTEXT, filtered(request, _principals(request)))


async def get_sp(request: web.Request) -> web.Response:
    authorize(request, SP_READ)
    found = next((p for p in _principals(request) if p["id"] == request.match_info["id"]), None)
    if found is None:
        raise _missing(request.match_info["id"])
    return entity(SP_CONTEXT + "/$entity", found)


def _assignment(request: web.Request, app: dict[str, Any], value: str) -> dict[str, Any]:
    principal = app["servicePrincipalId"]
    return {
        "id": str(uuid.uuid5(_NS, f"{principal}/{value}")),
        "appRoleId": role_id(value),
        "principalId": principal,
        "principalType": "ServicePrincipal",
        "principalDisplayName": app.get("displayName"),
        "resourceId": GRAPH_SP_ID,
        "resourceDisplayName": "Microsoft Graph",
        "createdDateTime": app.setdefault("_grantedAt", {}).get(value, "2025-03-01T09:00:00Z"),
        "deletedDateTime": None,
    }


def _client(request: web.Request) -> dict[str, Any]:
    app = _app_by_sp(request, request.match_info["id"])
    if app is None:
        raise _missing(request.match_info["id"])
    return app


async def list_assignments(request: web.Request) -> web.Response:
    authorize(request, SP_READ)
    app = _client(request)
    values = [_assignment(request, app, v) for v in app.get("graphRoles", [])]
    return collection(SP_CONTEXT + f"('{app['servicePrincipalId']}')/appRoleAssignments", filtered(request, values))


async def create_assignment(request: web.Request) -> web.Response:
    authorize_all(request, ASSIGN, SP_READ)
    app = _client(request)
    body = await json_object(request, {"principalId", "resourceId", "appRoleId"})
    required(body, "principalId", "resourceId", "appRoleId")
    if body["principalId"] != app["servicePrincipalId"]:
        raise bad_request("principalId must be the service principal in the URL.")
    if body["resourceId"] != GRAPH_SP_ID:
        raise _missing(body["resourceId"])  # the only resource service principal emulated is Microsoft Graph
    value = graph_roles(request).get(body["appRoleId"])
    if value is None:
        raise bad_request("Permission being assigned was not found on application", code="Request_BadRequest")
    if value in app.get("graphRoles", []):
        raise bad_request("Permission being assigned already exists on the object", code="Request_BadRequest")
    app.setdefault("graphRoles", []).append(value)
    app.setdefault("_grantedAt", {})[value] = now(request)
    return entity(SP_CONTEXT + "/appRoleAssignments/$entity", _assignment(request, app, value), 201)


async def delete_assignment(request: web.Request) -> web.Response:
    authorize(request, ASSIGN)
    app = _client(request)
    value = next(
        (v for v in app.get("graphRoles", []) if _assignment(request, app, v)["id"] == request.match_info["aid"]), None
    )
    if value is None:
        raise _missing(request.match_info["aid"])
    app["graphRoles"].remove(value)
    return web.Response(status=204)


# --- entitlement management role assignments -------------------------------------------------------------------


def em_role_assignments(request: web.Request) -> dict[str, dict[str, Any]]:
    return governance(state_of(request))["roleAssignments"]


async def list_role_assignments(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    return collection(RA_CONTEXT, filtered(request, list(em_role_assignments(request).values())))


async def create_role_assignment(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    body = await json_object(request, {"principalId", "roleDefinitionId", "appScopeId", "directoryScopeId"})
    required(body, "principalId", "roleDefinitionId")
    if not body.get("appScopeId") and not body.get("directoryScopeId"):
        raise bad_request("Either appScopeId or directoryScopeId must be specified.")
    if body["roleDefinitionId"] not in EM_ROLES:
        raise not_found(f"Role definition '{body['roleDefinitionId']}' was not found.")
    state_of(request).directory_object(body["principalId"])  # 404 for an unknown principal
    scope = body.get("appScopeId")
    if scope:
        kind, _, catalog_id = scope.strip("/").partition("/")
        if kind != "AccessPackageCatalog" or catalog_id not in em_of(request).catalogs:
            raise not_found(f"The scope '{scope}' names no access package catalog.")
    duplicate = any(
        all(a.get(k) == body.get(k) for k in ("principalId", "roleDefinitionId", "appScopeId", "directoryScopeId"))
        for a in em_role_assignments(request).values()
    )
    if duplicate:
        raise bad_request("A role assignment with this principal, role and scope exists.", code="RoleAssignmentExists")
    created = {
        "id": new_id(),
        "principalId": body["principalId"],
        "roleDefinitionId": body["roleDefinitionId"],
        "appScopeId": scope,
        "directoryScopeId": body.get("directoryScopeId"),
        "condition": None,
    }
    em_role_assignments(request)[created["id"]] = created
    return entity(RA_CONTEXT + "/$entity", created, 201)


async def delete_role_assignment(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    if em_role_assignments(request).pop(request.match_info["id"], None) is None:
        raise _missing(request.match_info["id"])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    for version in VERSIONS:
        r.add_get(f"{version}/servicePrincipals", list_sps)
        r.add_get(f"{version}/servicePrincipals/{{id}}", get_sp)
        r.add_get(f"{version}/servicePrincipals/{{id}}/appRoleAssignments", list_assignments)
        r.add_post(f"{version}/servicePrincipals/{{id}}/appRoleAssignments", create_assignment)
        r.add_delete(f"{version}/servicePrincipals/{{id}}/appRoleAssignments/{{aid}}", delete_assignment)
        base = f"{version}/roleManagement/entitlementManagement/roleAssignments"
        r.add_get(base, list_role_assignments)
        r.add_post(base, create_role_assignment)
        r.add_delete(base + "/{id}", delete_role_assignment)
