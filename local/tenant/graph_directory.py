"""Graph directory routes: users, managers, memberships, group members, sessions, registration report, audits.

Each handler names the page it follows; permissions are the least-privileged application permission the page
lists plus the higher-privileged ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .auth import authorize
from .errors import bad_request, json_object, not_found
from .odata import page, parse_filter, select
from .state import TenantState, missing

VERSIONS = ("/v1.0", "/beta")
GRAPH = "https://graph.microsoft.com/v1.0"

READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_MEMBERSHIP = (
    "GroupMember.Read.All",
    "User.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
WRITE_MEMBERS = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
REVOKE = ("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
AUDIT = ("AuditLog.Read.All",)
WRITE_USERS = ("User.ReadWrite.All", "Directory.ReadWrite.All")

# The properties GET /users returns without $select (v1.0): https://learn.microsoft.com/graph/api/user-get
DEFAULT_USER = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_PROPERTIES = set(DEFAULT_USER) | {
    "accountEnabled",
    "userType",
    "createdDateTime",
    "department",
    "onPremisesExtensionAttributes",
    "signInSessionsValidFromDateTime",
    "employeeId",
    "companyName",
    "usageLocation",
    "otherMails",
}
# Filters Graph answers without advanced query capabilities (ConsistencyLevel: eventual + $count=true).
_INTERNAL = ("managerId", "methods", "defaultMethodId")


def route(app: web.Application, method: str, path: str, handler: Callable) -> None:
    for version in VERSIONS:
        app.router.add_route(method, version + path, handler)


def user_json(user: dict[str, Any], fields: str | None) -> dict[str, Any]:
    public = {k: v for k, v in user.items() if k not in _INTERNAL}
    public.setdefault("officeLocation", None)
    public.setdefault("preferredLanguage", None)
    if fields:
        return select(public, fields, USER_PROPERTIES)
    return {k: public.get(k) for k in DEFAULT_USER}


def _state(request: web.Request) -> TenantState:
    return request.app[STATE]


def _advanced(request: web.Request) -> bool:
    return request.headers.get("ConsistencyLevel", "").lower() == "eventual"


# --- users --------------------------------------------------------------------------------------------


async def get_user(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/user-get"""
    authorize(request, READ_USERS)
    user = _state(request).user(request.match_info["id"])
    body = {"@odata.context": f"{GRAPH}/$metadata#users/$entity", **user_json(user, request.query.get("$select"))}
    return web.json_response(body)


async def list_users(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/user-list and advanced queries:
    https://learn.microsoft.com/graph/aad-advanced-queries ($count and ne/not/null need ConsistencyLevel)."""
    authorize(request, READ_USERS)
    predicate, needs_advanced = parse_filter(request.query.get("$filter"))
    wants_count = request.query.get("$count", "").lower() == "true"
    if (needs_advanced or wants_count) and not _advanced(request):
        raise bad_request(
            "Unsupported Query. This query requires the ConsistencyLevel header set to eventual and $count=true."
            if needs_advanced
            else "$count is not currently supported without the ConsistencyLevel header set to eventual.",
            code="Request_UnsupportedQuery",
        )
    if needs_advanced and not wants_count:
        raise bad_request("Unsupported Query: advanced queries need $count=true.", code="Request_UnsupportedQuery")
    users = [u for u in _state(request).users.values() if predicate is None or predicate(u)]
    fields = request.query.get("$select")
    items = [user_json(u, fields) for u in users]
    return page(request, items, f"{GRAPH}/$metadata#users", count=len(items) if wants_count else None)


async def get_manager(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/user-list-manager (404 when the user has no manager)."""
    authorize(request, READ_USERS)
    state = _state(request)
    user = state.user(request.match_info["id"])
    if not user.get("managerId"):
        raise not_found(
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present."
        )
    manager = state.user(user["managerId"])
    body = {
        "@odata.context": f"{GRAPH}/$metadata#directoryObjects/$entity",
        "@odata.type": "#microsoft.graph.user",
        **user_json(manager, request.query.get("$select")),
    }
    return web.json_response(body)


async def set_manager(request: web.Request) -> web.Response:
    """PUT /users/{id}/manager/$ref: https://learn.microsoft.com/graph/api/user-post-manager ; logged as the
    directory audit "Set manager" (Core Directory, UserManagement) as Entra does."""
    claims = authorize(request, WRITE_USERS)
    state = _state(request)
    user = state.user(request.match_info["id"])
    body = await json_object(request)
    new_id = _ref_id(body)
    kind, _ = state.directory_object(new_id)
    if kind != "user":
        raise bad_request("The manager must be a user.")
    old = user.get("managerId")
    user["managerId"] = new_id
    record_audit(state, "Set manager", user, [("Manager.ObjectID", old, new_id)], {"app": claims.get("appid")})
    return web.Response(status=204)


def record_audit(state: TenantState, activity: str, target: dict[str, Any], changes: list[tuple], initiated: dict):
    """Append a directory audit shaped like https://learn.microsoft.com/graph/api/resources/directoryaudit"""
    state.directory_audits.append(
        {
            "id": f"Directory_{uuid.uuid4().hex[:12]}",
            "category": "UserManagement",
            "correlationId": str(uuid.uuid4()),
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": state.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "loggedByService": "Core Directory",
            "operationType": "Assign",
            "initiatedBy": {"app": {"appId": initiated.get("app"), "displayName": None}, "user": None},
            "targetResources": [
                {
                    "id": target["id"],
                    "displayName": target.get("displayName"),
                    "type": "User",
                    "userPrincipalName": target.get("userPrincipalName"),
                    "modifiedProperties": [
                        {
                            "displayName": name,
                            "oldValue": f'"{old}"' if old else None,
                            "newValue": f'"{new}"' if new else None,
                        }
                        for name, old, new in changes
                    ],
                }
            ],
            "additionalDetails": [],
        }
    )


# --- memberships --------------------------------------------------------------------------------------


def _object_json(state: TenantState, object_id: str) -> dict[str, Any]:
    kind, obj = state.directory_object(object_id)
    if kind == "user":
        return {"@odata.type": "#microsoft.graph.user", **user_json(obj, None)}
    if kind == "group":
        return {"@odata.type": "#microsoft.graph.group", **{k: v for k, v in obj.items() if k != "members"}}
    return {"@odata.type": f"#microsoft.graph.{kind}", **{k: v for k, v in obj.items() if k != "members"}}


def _containers(state: TenantState, object_id: str) -> list[str]:
    direct = [g["id"] for g in state.groups.values() if object_id in g["members"]]
    direct += [r["id"] for r in state.directory_roles.values() if object_id in r["members"]]
    return direct


def transitive_containers(state: TenantState, object_id: str) -> list[str]:
    seen: list[str] = []
    queue = _containers(state, object_id)
    while queue:
        current = queue.pop(0)
        if current not in seen:
            seen.append(current)
            queue.extend(_containers(state, current))
    return seen


def _cast(items: list[dict[str, Any]], cast: str | None) -> list[dict[str, Any]]:
    if not cast:
        return items
    # Graph's $metadata declares the alias "graph" for the namespace microsoft.graph
    # (<Schema Namespace="microsoft.graph" Alias="graph">), so /transitiveMemberOf/graph.group is the same cast as
    # /transitiveMemberOf/microsoft.graph.group (https://learn.microsoft.com/graph/api/user-list-transitivememberof);
    # msgraph-sdk's request builders send the alias form.
    wanted = "#" + (cast if cast.startswith("microsoft.") else "microsoft." + cast)
    return [i for i in items if i.get("@odata.type") == wanted]


def _selected(items: list[dict[str, Any]], fields: str | None) -> list[dict[str, Any]]:
    if not fields:
        return items
    names = {f.strip() for f in fields.split(",")}
    return [{k: v for k, v in i.items() if k in names or k == "@odata.type"} for i in items]


async def member_of(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/user-list-memberof and user-list-transitivememberof"""
    authorize(request, READ_MEMBERSHIP)
    state = _state(request)
    user = state.user(request.match_info["id"])
    transitive = "transitive" in request.path.split("/")[-1].lower() or "/transitiveMemberOf" in request.path
    ids = transitive_containers(state, user["id"]) if transitive else _containers(state, user["id"])
    items = _cast([_object_json(state, i) for i in ids], request.match_info.get("cast"))
    predicate, _ = parse_filter(request.query.get("$filter"))
    if predicate is not None:
        items = [i for i in items if predicate(i)]
    return page(request, _selected(items, request.query.get("$select")), f"{GRAPH}/$metadata#directoryObjects")


async def get_group(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/group-get"""
    authorize(
        request,
        (
            "Group.Read.All",
            "Directory.Read.All",
            "Group.ReadWrite.All",
            "Directory.ReadWrite.All",
            "GroupMember.Read.All",
        ),
    )
    group = _state(request).group(request.match_info["id"])
    return web.json_response(
        {"@odata.context": f"{GRAPH}/$metadata#groups/$entity", **{k: v for k, v in group.items() if k != "members"}}
    )


async def group_members(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/group-list-members and group-list-transitivemembers"""
    authorize(request, READ_MEMBERSHIP)
    state = _state(request)
    group = state.group(request.match_info["id"])
    ids = list(group["members"])
    if "transitiveMembers" in request.path:
        seen: list[str] = []
        while ids:
            current = ids.pop(0)
            if current in seen:
                continue
            seen.append(current)
            if current in state.groups:
                ids.extend(state.groups[current]["members"])
        ids = seen
    items = _cast([_object_json(state, i) for i in ids], request.match_info.get("cast"))
    return page(request, _selected(items, request.query.get("$select")), f"{GRAPH}/$metadata#directoryObjects")


async def add_member(request: web.Request) -> web.Response:
    """POST /groups/{id}/members/$ref: https://learn.microsoft.com/graph/api/group-post-members"""
    authorize(request, WRITE_MEMBERS)
    state = _state(request)
    group = state.group(request.match_info["id"])
    member_id = _ref_id(await json_object(request))
    state.directory_object(member_id)
    if member_id in group["members"]:
        raise bad_request(
            "One or more added object references already exist for the following modified properties: 'members'."
        )
    group["members"].append(member_id)
    return web.Response(status=204)


async def remove_member(request: web.Request) -> web.Response:
    """DELETE /groups/{id}/members/{id}/$ref: https://learn.microsoft.com/graph/api/group-delete-members"""
    authorize(request, WRITE_MEMBERS)
    group = _state(request).group(request.match_info["id"])
    member_id = request.match_info["member"]
    if member_id not in group["members"]:
        raise missing(member_id)
    group["members"].remove(member_id)
    return web.Response(status=204)


def _ref_id(body: dict[str, Any]) -> str:
    """The object id of {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}."""
    unknown = set(body) - {"@odata.id"}
    if unknown:
        raise bad_request(f"Invalid property '{sorted(unknown)[0]}' in a reference body.")
    ref = body.get("@odata.id")
    if not isinstance(ref, str) or ("/directoryObjects/" not in ref and "/users/" not in ref and "/groups/" not in ref):
        raise bad_request("Invalid object identifier in @odata.id.")
    object_id = ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        uuid.UUID(object_id)
    except ValueError:
        raise bad_request(f"Invalid object identifier '{object_id}'.") from None
    return object_id


# --- sessions, reports, audits -----------------------------------------------------------------------------


async def revoke_sessions(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/user-revokesigninsessions → 200 {"value": true}"""
    authorize(request, REVOKE)
    state = _state(request)
    user = state.user(request.match_info["id"])
    user["signInSessionsValidFromDateTime"] = state.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return web.json_response({"@odata.context": f"{GRAPH}/$metadata#Edm.Boolean", "value": True})


_REGISTERED = {
    "mobile": "mobilePhone",
    "alternateMobile": "alternateMobilePhone",
    "office": "officePhone",
    "microsoftAuthenticator": "microsoftAuthenticatorPush",
    "softwareOath": "softwareOneTimePasscode",
    "hardwareOath": "hardwareOneTimePasscode",
    "fido2": "passKeyDeviceBound",
    "windowsHelloForBusiness": "windowsHelloForBusiness",
    "email": "email",
    "temporaryAccessPass": "temporaryAccessPass",
    "platformCredential": "macOsSecureEnclaveKey",
}
_MFA = {
    "mobilePhone",
    "alternateMobilePhone",
    "officePhone",
    "microsoftAuthenticatorPush",
    "softwareOneTimePasscode",
    "hardwareOneTimePasscode",
    "passKeyDeviceBound",
    "windowsHelloForBusiness",
    "macOsSecureEnclaveKey",
}


def registration(state: TenantState, user: dict[str, Any]) -> dict[str, Any]:
    """https://learn.microsoft.com/graph/api/resources/userregistrationdetails, computed from the user's methods."""
    methods = []
    default = "none"
    for method in user.get("methods", []):
        short = method.get("@odata.type", "").removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
        key = method.get("phoneType") if short == "phone" else short
        name = _REGISTERED.get(key or "")
        if name and name not in methods:
            methods.append(name)
        if method.get("id") == user.get("defaultMethodId") and name:
            default = name
    is_admin = any(user["id"] in r["members"] for r in state.directory_roles.values())
    mfa = bool(set(methods) & _MFA)
    return {
        "id": user["id"],
        "userPrincipalName": user.get("userPrincipalName"),
        "userDisplayName": user.get("displayName"),
        "userType": "member" if user.get("userType") == "Member" else "guest",
        "isAdmin": is_admin,
        "isSsprRegistered": bool(set(methods) & {"mobilePhone", "email", "microsoftAuthenticatorPush"}),
        "isSsprEnabled": True,
        "isSsprCapable": bool(set(methods) & {"mobilePhone", "email", "microsoftAuthenticatorPush"}),
        "isMfaRegistered": mfa,
        "isMfaCapable": mfa,
        "isPasswordlessCapable": bool(set(methods) & {"passKeyDeviceBound", "windowsHelloForBusiness"}),
        "methodsRegistered": methods,
        "isSystemPreferredAuthenticationMethodEnabled": False,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": default if default != "none" else "none",
        "defaultMfaMethod": default,
        "lastUpdatedDateTime": state.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def registration_details(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails"""
    authorize(request, AUDIT)
    state = _state(request)
    items = [registration(state, u) for u in state.users.values()]
    predicate, _ = parse_filter(request.query.get("$filter"))
    if predicate is not None:
        items = [i for i in items if predicate(i)]
    return page(request, items, f"{GRAPH}/$metadata#reports/authenticationMethods/userRegistrationDetails")


async def registration_detail(request: web.Request) -> web.Response:
    authorize(request, AUDIT)
    state = _state(request)
    return web.json_response(registration(state, state.user(request.match_info["id"])))


async def directory_audits(request: web.Request) -> web.Response:
    """https://learn.microsoft.com/graph/api/directoryaudit-list (newest first)."""
    authorize(request, AUDIT)
    items = sorted(_state(request).directory_audits, key=lambda a: a["activityDateTime"], reverse=True)
    predicate, _ = parse_filter(request.query.get("$filter"))
    if predicate is not None:
        items = [i for i in items if predicate(i)]
    return page(request, items, f"{GRAPH}/$metadata#auditLogs/directoryAudits")


def setup(app: web.Application) -> None:
    route(app, "GET", "/users", list_users)
    route(app, "GET", "/users/{id}", get_user)
    route(app, "GET", "/users/{id}/manager", get_manager)
    route(app, "PUT", "/users/{id}/manager/$ref", set_manager)
    for relation in ("memberOf", "transitiveMemberOf"):
        route(app, "GET", f"/users/{{id}}/{relation}", member_of)
        route(
            app, "GET", f"/users/{{id}}/{relation}/{{cast:(?:microsoft\\.)?graph\\.(group|directoryRole)}}", member_of
        )
    route(app, "POST", "/users/{id}/revokeSignInSessions", revoke_sessions)
    route(app, "GET", "/groups/{id}", get_group)
    for relation in ("members", "transitiveMembers"):
        route(app, "GET", f"/groups/{{id}}/{relation}", group_members)
        route(app, "GET", f"/groups/{{id}}/{relation}/{{cast:(?:microsoft\\.)?graph\\.(user|group)}}", group_members)
    route(app, "POST", "/groups/{id}/members/$ref", add_member)
    route(app, "DELETE", "/groups/{id}/members/{member}/$ref", remove_member)
    route(app, "GET", "/reports/authenticationMethods/userRegistrationDetails", registration_details)
    route(app, "GET", "/reports/authenticationMethods/userRegistrationDetails/{id}", registration_detail)
    route(app, "GET", "/auditLogs/directoryAudits", directory_audits)
