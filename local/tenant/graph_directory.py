"""Graph directory routes: users, managers, memberships, group members, sessions, registration report, audits.

Every route is served on /v1.0 and /beta. Each handler names the learn.microsoft.com page it follows;
permissions are the least-privileged application permission the page lists plus the higher-privileged ones.
Other modules append directory audits with record_audit().
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .auth import authorize
from .errors import GraphError, bad_request, json_object, not_found
from .method_rules import tap_usability
from .odata import (
    ADVANCED,
    DEFAULT,
    Filter,
    advanced_query,
    check_filter,
    consistency_eventual,
    parse,
    select,
    select_fields,
)
from .odata import page as odata_page
from .state import TenantState, missing

VERSIONS = ("v1.0", "beta")
GRAPH_HOST = "https://graph.microsoft.com"

# Permissions, least privileged first (each page's "Permissions" table, application row).
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")  # user-get
WRITE_MANAGER = ("User.ReadWrite.All", "Directory.ReadWrite.All")  # user-post-manager, user-delete-manager
READ_MEMBER_OF = (  # user-list-memberof, user-list-transitivememberof
    "User.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "GroupMember.Read.All",
)
READ_GROUP = (  # group-get
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
)
READ_MEMBERS = (  # group-list-members, group-list-transitivemembers
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
)
WRITE_MEMBERS = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")  # group-post-members
REVOKE = ("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All")  # user-revokesigninsessions
# authenticationmethodsroot-list-userregistrationdetails: AuditLog.Read.All; higher UserAuthenticationMethod.Read.All.
REPORT = ("AuditLog.Read.All", "UserAuthenticationMethod.Read.All")
# directoryaudit-list: "AuditLog.Read.All and Directory.Read.All" (both; no higher-privileged alternative listed).
AUDIT = ("AuditLog.Read.All",)
AUDIT_DIRECTORY = ("Directory.Read.All", "Directory.ReadWrite.All")

# The properties GET /users and /users/{id} return without $select: https://learn.microsoft.com/graph/api/user-get
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
# Every user property $select may name (https://learn.microsoft.com/graph/api/resources/user); others are a 400.
USER_PROPERTIES = set(DEFAULT_USER) | set(
    [
        "aboutMe",
        "accountEnabled",
        "ageGroup",
        "assignedLicenses",
        "assignedPlans",
        "authorizationInfo",
        "birthday",
        "city",
        "companyName",
        "consentProvidedForMinor",
        "country",
        "createdDateTime",
        "creationType",
        "customSecurityAttributes",
        "deletedDateTime",
        "department",
        "employeeHireDate",
        "employeeId",
        "employeeLeaveDateTime",
        "employeeOrgData",
        "employeeType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "faxNumber",
        "hireDate",
        "identities",
        "imAddresses",
        "interests",
        "isManagementRestricted",
        "isResourceAccount",
        "lastPasswordChangeDateTime",
        "legalAgeGroupClassification",
        "licenseAssignmentStates",
        "mailboxSettings",
        "mailNickname",
        "mySite",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesExtensionAttributes",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "onPremisesProvisioningErrors",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "onPremisesUserPrincipalName",
        "otherMails",
        "passwordPolicies",
        "passwordProfile",
        "pastProjects",
        "postalCode",
        "preferredDataLocation",
        "preferredName",
        "provisionedPlans",
        "proxyAddresses",
        "responsibilities",
        "schools",
        "securityIdentifier",
        "serviceProvisioningErrors",
        "showInAddressList",
        "signInActivity",
        "signInSessionsValidFromDateTime",
        "skills",
        "state",
        "streetAddress",
        "usageLocation",
        "userType",
    ]
)
_INTERNAL = ("managerId", "methods", "defaultMethodId")  # the tenant's bookkeeping, never part of Graph's JSON

# $filter support of user properties: https://learn.microsoft.com/graph/aad-advanced-queries (user table).
# Properties not listed do not support $filter at all. ne and not are advanced wherever eq is supported.
D, A = DEFAULT, ADVANCED
USER_FILTERS: dict[str, dict[str, str]] = {
    "accountEnabled": {"eq": D, "ge": A, "le": A, "in": D},
    "ageGroup": {"eq": D, "in": D},
    "businessPhones": {"eq": D},
    "city": {"eq": D, "ge": D, "in": D, "startsWith": D, "null": A},
    "companyName": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A, "null": A},
    "country": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "createdDateTime": {"eq": D, "ge": D, "le": D, "in": A},
    "creationType": {"eq": D, "in": D},
    "department": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "displayName": {"eq": D, "in": D, "startsWith": D, "null": A},
    "employeeHireDate": {"eq": A, "ge": A, "le": A, "in": A},
    "employeeId": {"eq": D, "le": A, "startsWith": D, "null": A},
    "employeeType": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A},
    "givenName": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "id": {"eq": D, "in": D},
    "imAddresses": {"eq": D, "ge": D, "le": D, "startsWith": D},
    "jobTitle": {"eq": D, "ge": D, "le": D, "in": D, "null": A},
    "mail": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "endsWith": A},
    "mailNickname": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "mobilePhone": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A, "null": A},
    "officeLocation": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A, "null": A},
    "onPremisesExtensionAttributes/*": {"eq": A, "ge": A, "le": A, "in": A},
    "onPremisesImmutableId": {"eq": A, "ge": A, "le": A, "in": A},
    "onPremisesSamAccountName": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A},
    "onPremisesSyncEnabled": {"eq": D, "ge": A, "le": A, "in": D},
    "otherMails": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "endsWith": A},
    "preferredLanguage": {"eq": A, "ge": A, "le": A, "in": A, "startsWith": A, "null": A},
    "proxyAddresses": {"eq": D, "ge": D, "le": D, "startsWith": D, "endsWith": A, "null": A},
    "state": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "surname": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D, "null": A},
    "usageLocation": {"eq": D, "ge": D, "le": D, "in": D, "startsWith": D},
    "userPrincipalName": {"eq": D, "le": D, "in": D, "startsWith": D, "endsWith": A},
    "userType": {"eq": D, "in": D, "null": A},
}
# $orderby on users: displayName and userPrincipalName by default, createdDateTime only in advanced queries.
USER_ORDERBY = {"displayName": D, "userPrincipalName": D, "createdDateTime": A}

# group-get's default property set (https://learn.microsoft.com/graph/api/group-get), with empty collections.
GROUP_DEFAULTS: dict[str, Any] = {
    "id": None,
    "deletedDateTime": None,
    "classification": None,
    "createdDateTime": None,
    "creationOptions": [],
    "description": None,
    "displayName": None,
    "expirationDateTime": None,
    "groupTypes": [],
    "isAssignableToRole": None,
    "mail": None,
    "mailEnabled": False,
    "mailNickname": None,
    "membershipRule": None,
    "membershipRuleProcessingState": None,
    "onPremisesDomainName": None,
    "onPremisesLastSyncDateTime": None,
    "onPremisesNetBiosName": None,
    "onPremisesSamAccountName": None,
    "onPremisesSecurityIdentifier": None,
    "onPremisesSyncEnabled": None,
    "preferredDataLocation": None,
    "preferredLanguage": None,
    "proxyAddresses": [],
    "renewedDateTime": None,
    "resourceBehaviorOptions": [],
    "resourceProvisioningOptions": [],
    "securityEnabled": True,
    "securityIdentifier": None,
    "theme": None,
    "visibility": None,
    "onPremisesProvisioningErrors": [],
    "serviceProvisioningErrors": [],
}
ROLE_DEFAULTS: dict[str, Any] = {
    "id": None,
    "deletedDateTime": None,
    "description": None,
    "displayName": None,
    "roleTemplateId": None,
}
CASTS = {"group": "groups", "directoryRole": "directoryRoles", "user": "users"}


# --- helpers --------------------------------------------------------------------------------------------


def route(app: web.Application, method: str, path: str, handler: Callable) -> None:
    """Register a handler on both version prefixes (/v1.0 and /beta)."""
    for version in VERSIONS:
        app.router.add_route(method, f"/{version}{path}", handler)


def version(request: web.Request) -> str:
    return request.path.split("/", 2)[1]


def context(request: web.Request, tail: str) -> str:
    """@odata.context as Graph writes it: https://graph.microsoft.com/{version}/$metadata#{tail}"""
    return f"{GRAPH_HOST}/{version(request)}/$metadata#{tail}"


def _with_select(entity_set: str, fields: str | None) -> str:
    """Graph names the selected properties in the context: #users(id,displayName)."""
    names = select_fields(fields)
    return f"{entity_set}({','.join(names)})" if names else entity_set


def graph_time(moment: datetime) -> str:
    """Graph's DateTimeOffset in UTC with 7 fractional digits, as the audit and report APIs write it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _state(request: web.Request) -> TenantState:
    return request.app[STATE]


def user_json(user: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """A user as Graph returns it: the default property set, or exactly $select (unknown names are a 400)."""
    public = {k: v for k, v in user.items() if k not in _INTERNAL}
    if fields:
        return select({name: public.get(name) for name in USER_PROPERTIES}, fields, USER_PROPERTIES, "user")
    return {k: public.get(k) for k in DEFAULT_USER}


def group_json(group: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
    full = {**GROUP_DEFAULTS, **{k: v for k, v in group.items() if k != "members"}}
    return select(full, fields, set(full), "group") if fields else full


def role_json(role: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
    full = {**ROLE_DEFAULTS, **{k: v for k, v in role.items() if k != "members"}}
    return select(full, fields, set(full), "directoryRole") if fields else full


def object_json(state: TenantState, object_id: str) -> dict[str, Any]:
    """A directoryObject in a relationship collection: the concrete type's JSON with its @odata.type."""
    kind, obj = state.directory_object(object_id)
    if kind == "user":
        body = user_json(obj, None)
    elif kind == "group":
        body = group_json(obj)
    elif kind == "directoryRole":
        body = role_json(obj)
    else:
        body = {"id": object_id, "appId": obj.get("appId"), "displayName": obj.get("displayName")}
    return {"@odata.type": f"#microsoft.graph.{kind}", **body}


def _select_mixed(items: list[dict[str, Any]], fields: str | None) -> list[dict[str, Any]]:
    """$select over a directoryObject collection: each item keeps the named properties its type has."""
    names = select_fields(fields)
    if not names:
        return items
    return [{k: v for k, v in i.items() if k in names or k == "@odata.type"} for i in items]


def _count(request: web.Request, items: list[dict[str, Any]]) -> int | None:
    """@odata.count only with both advanced query parameters; without the header Graph silently ignores
    ?$count=true (https://learn.microsoft.com/graph/aad-advanced-queries#error-handling-for-advanced-queries)."""
    return len(items) if advanced_query(request) else None


# --- users ----------------------------------------------------------------------------------------------


async def get_user(request: web.Request) -> web.Response:
    """GET /users/{id | userPrincipalName}: https://learn.microsoft.com/graph/api/user-get"""
    authorize(request, READ_USERS)
    user = _state(request).user(request.match_info["id"])
    fields = request.query.get("$select")
    body = {"@odata.context": context(request, _with_select("users", fields) + "/$entity"), **user_json(user, fields)}
    return web.json_response(body)


def _search(text: str) -> Callable[[dict[str, Any]], bool]:
    """$search="property:words" clauses joined by AND/OR; a word matches the start of any word of the
    property, as Graph's tokenized search does (https://learn.microsoft.com/graph/search-query-parameter)."""
    clauses = re.findall(r'"([^":]+):([^"]*)"|\b(AND|OR)\b', text)
    if not clauses or not clauses[0][0]:
        raise bad_request('Invalid $search: use "property:value" clauses.', code="Request_UnsupportedQuery")

    def one(prop: str, words: str, user: dict[str, Any]) -> bool:
        value = str(user.get(prop) or "").lower()
        tokens = re.split(r"[\s.@_-]+", value)
        return all(any(t.startswith(w) for t in tokens) for w in words.lower().split())

    def test(user: dict[str, Any]) -> bool:
        result: bool | None = None
        joiner = "AND"
        for prop, words, op in clauses:
            if op:
                joiner = op
                continue
            hit = one(prop, words, user)
            result = hit if result is None else (result and hit if joiner == "AND" else result or hit)
        return bool(result)

    return test


def _order(request: web.Request, parsed: Filter | None) -> tuple[str, bool] | None:
    """$orderby for users (aad-advanced-queries, sorting table); with $filter it needs advanced queries."""
    text = request.query.get("$orderby")
    if not text:
        return None
    prop, _, direction = text.strip().partition(" ")
    level = USER_ORDERBY.get(prop)
    advanced = advanced_query(request)
    if level is None or (level == ADVANCED and not advanced) or (parsed is not None and not advanced):
        raise bad_request("Sorting not supported for current query.", code="Request_UnsupportedQuery")
    return prop, direction.strip().lower() == "desc"


def _matching_users(request: web.Request) -> list[dict[str, Any]]:
    """The users a list or $count request names: $filter and $search under the advanced-query rules."""
    parsed = parse(request.query.get("$filter"))
    check_filter(parsed, USER_FILTERS, "User", advanced=advanced_query(request))
    search = request.query.get("$search")
    if search is not None and not consistency_eventual(request):
        raise bad_request(
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'",
            code="Request_UnsupportedQuery",
        )
    searcher = _search(search) if search is not None else None
    users = [
        u for u in _state(request).users.values() if (parsed is None or parsed(u)) and (searcher is None or searcher(u))
    ]
    order = _order(request, parsed)
    if order:
        users.sort(key=lambda u: str(u.get(order[0]) or "").lower(), reverse=order[1])
    return users


async def list_users(request: web.Request) -> web.Response:
    """GET /users: https://learn.microsoft.com/graph/api/user-list ($filter, $select, $top 1–999, $count,
    $search, $orderby; default page 100) with https://learn.microsoft.com/graph/aad-advanced-queries."""
    authorize(request, READ_USERS)
    users = _matching_users(request)
    fields = request.query.get("$select")
    items = [user_json(u, fields) for u in users]
    return odata_page(request, items, context(request, _with_select("users", fields)), count=_count(request, items))


async def count_users(request: web.Request) -> web.Response:
    """GET /users/$count (text/plain): only with ConsistencyLevel: eventual, else 400 "$count is not currently
    supported." (https://learn.microsoft.com/graph/aad-advanced-queries#error-handling-for-advanced-queries)."""
    authorize(request, READ_USERS)
    if not consistency_eventual(request):
        raise bad_request("$count is not currently supported.")
    # The $count segment counts as the advanced query's $count.
    parsed = parse(request.query.get("$filter"))
    check_filter(parsed, USER_FILTERS, "User", advanced=True)
    total = sum(1 for u in _state(request).users.values() if parsed is None or parsed(u))
    return web.Response(text=str(total), content_type="text/plain")


# --- manager --------------------------------------------------------------------------------------------


async def get_manager(request: web.Request) -> web.Response:
    """GET /users/{id}/manager: https://learn.microsoft.com/graph/api/user-list-manager (404 when none)."""
    authorize(request, READ_USERS)
    state = _state(request)
    user = state.user(request.match_info["id"])
    if not user.get("managerId"):
        raise not_found(
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present."
        )
    manager = state.user(user["managerId"])
    body = {
        "@odata.context": context(request, "directoryObjects/$entity"),
        "@odata.type": "#microsoft.graph.user",
        **user_json(manager, request.query.get("$select")),
    }
    return web.json_response(body)


async def set_manager(request: web.Request) -> web.Response:
    """PUT /users/{id}/manager/$ref {"@odata.id": ".../users/{id}"} → 204:
    https://learn.microsoft.com/graph/api/user-post-manager. Audited as Entra does: "Set manager"
    (Core Directory, UserManagement) with the Manager.ObjectID change."""
    claims = authorize(request, WRITE_MANAGER)
    state = _state(request)
    user = state.user(request.match_info["id"])
    manager_id = ref_id(request, await json_object(request))
    kind, manager = state.directory_object(manager_id)
    if kind != "user":
        # The docs allow a user or an organizational contact; the tenant has no contacts.
        raise bad_request(f"Invalid object identifier '{manager_id}'. A manager must be a user.")
    if manager_id == user["id"]:
        raise bad_request("A user cannot be their own manager.")
    old = user.get("managerId")
    user["managerId"] = manager_id
    changes = [("Manager.ObjectID", old, manager_id), ("Manager.UserPrincipalName", None, manager["userPrincipalName"])]
    record_audit(state, "Set manager", user, changes, claims, operation_type="Assign")
    return web.Response(status=204)


async def remove_manager(request: web.Request) -> web.Response:
    """DELETE /users/{id}/manager/$ref → 204: https://learn.microsoft.com/graph/api/user-delete-manager;
    audited as "Remove manager". 404 when the user has no manager."""
    claims = authorize(request, WRITE_MANAGER)
    state = _state(request)
    user = state.user(request.match_info["id"])
    old = user.get("managerId")
    if not old:
        raise not_found(
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present."
        )
    user["managerId"] = None
    record_audit(state, "Remove manager", user, [("Manager.ObjectID", old, None)], claims, operation_type="Unassign")
    return web.Response(status=204)


# --- memberships ----------------------------------------------------------------------------------------


def _containers(state: TenantState, object_id: str) -> list[str]:
    direct = [g["id"] for g in state.groups.values() if object_id in g["members"]]
    direct += [r["id"] for r in state.directory_roles.values() if object_id in r["members"]]
    return direct


def transitive_containers(state: TenantState, object_id: str) -> list[str]:
    """Every group and directory role `object_id` is in, directly or through nested groups."""
    seen: list[str] = []
    queue = _containers(state, object_id)
    while queue:
        current = queue.pop(0)
        if current not in seen:
            seen.append(current)
            queue.extend(_containers(state, current))
    return seen


def transitive_members(state: TenantState, group_id: str) -> list[str]:
    """Every member of a group, directly or through nested groups (nested groups included)."""
    seen: list[str] = []
    queue = list(state.group(group_id)["members"])
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.append(current)
        if current in state.groups:
            queue.extend(state.groups[current]["members"])
    return seen


def _cast_name(request: web.Request) -> str | None:
    """The type-cast segment's type (group, directoryRole, user). Graph's $metadata declares the alias "graph"
    for the namespace microsoft.graph, so msgraph-sdk's /graph.group is the same cast as /microsoft.graph.group."""
    cast = request.match_info.get("cast")
    return cast.rsplit(".", 1)[-1] if cast else None


def _relationship(request: web.Request, ids: list[str]) -> web.Response:
    """A directoryObject collection (memberOf, members, ...) with its cast, $filter, $select, $count and paging."""
    state = _state(request)
    cast = _cast_name(request)
    items = [object_json(state, i) for i in ids]
    fields = request.query.get("$select")
    if cast:
        items = [i for i in items if i["@odata.type"] == f"#microsoft.graph.{cast}"]
        allowed = {"user": USER_PROPERTIES, "group": set(GROUP_DEFAULTS), "directoryRole": set(ROLE_DEFAULTS)}[cast]
        for name in select_fields(fields):
            if name not in allowed:
                raise bad_request(
                    "Parsing OData Select and Expand failed: Could not find a property named "
                    f"'{name}' on type 'microsoft.graph.{cast}'.",
                    code="BadRequest",
                )
    entity_set = CASTS[cast] if cast else "directoryObjects"
    tail = _with_select(entity_set, fields)
    if cast == "user" and fields:
        items = [{"@odata.type": i["@odata.type"], **user_json(state.users[i["id"]], fields)} for i in items]
    parsed = parse(request.query.get("$filter"))
    if parsed is not None:
        items = [i for i in items if parsed(i)]
    # "Use of OData cast with transitive members list" with $count is an advanced query (aad-advanced-queries):
    # without the header $count=true is ignored, as everywhere.
    return odata_page(request, _select_mixed(items, fields), context(request, tail), count=_count(request, items))


async def member_of(request: web.Request) -> web.Response:
    """GET /users/{id}/memberOf and /transitiveMemberOf [/microsoft.graph.group | /microsoft.graph.directoryRole]:
    https://learn.microsoft.com/graph/api/user-list-memberof, user-list-transitivememberof"""
    authorize(request, READ_MEMBER_OF)
    state = _state(request)
    user = state.user(request.match_info["id"])
    transitive = "/transitiveMemberOf" in request.path
    ids = transitive_containers(state, user["id"]) if transitive else _containers(state, user["id"])
    return _relationship(request, ids)


async def get_group(request: web.Request) -> web.Response:
    """GET /groups/{id}: https://learn.microsoft.com/graph/api/group-get"""
    authorize(request, READ_GROUP)
    group = _state(request).group(request.match_info["id"])
    fields = request.query.get("$select")
    body = {
        "@odata.context": context(request, _with_select("groups", fields) + "/$entity"),
        **group_json(group, fields),
    }
    return web.json_response(body)


async def group_members(request: web.Request) -> web.Response:
    """GET /groups/{id}/members and /transitiveMembers [/microsoft.graph.user | /microsoft.graph.group]:
    https://learn.microsoft.com/graph/api/group-list-members, group-list-transitivemembers"""
    authorize(request, READ_MEMBERS)
    state = _state(request)
    group = state.group(request.match_info["id"])
    transitive = "/transitiveMembers" in request.path
    ids = transitive_members(state, group["id"]) if transitive else list(group["members"])
    return _relationship(request, ids)


_REF = re.compile(
    r"^(?:https?://[^/]+)?/(?:v1\.0|beta)/(?:directoryObjects|users|groups|servicePrincipals|devices|orgContacts)/"
    r"(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def ref_id(request: web.Request, body: dict[str, Any]) -> str:
    """The object id of a $ref body {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}.

    group-post-members documents that form; Graph also takes /users/{id} and /groups/{id}. The host must be
    Graph's (or this tenant's own, which local clients may use). Docs are silent on the errors: 400s here."""
    unknown = sorted(set(body) - {"@odata.id"})
    if unknown:
        raise bad_request(f"Invalid property '{unknown[0]}' in a reference body.", code="BadRequest")
    ref = body.get("@odata.id")
    if not isinstance(ref, str) or not ref:
        raise bad_request("The request body must contain '@odata.id' with the reference URL.", code="BadRequest")
    match = _REF.match(ref.strip())
    host = re.match(r"^https?://([^/]+)", ref.strip())
    if not match or (host and host.group(1).lower() not in ("graph.microsoft.com", request.host.lower())):
        raise bad_request(f"Invalid object identifier '{ref}'.")
    return match.group("id").lower()


async def add_member(request: web.Request) -> web.Response:
    """POST /groups/{id}/members/$ref → 204: https://learn.microsoft.com/graph/api/group-post-members
    (400 when the object is already a member; 404 when it does not exist). Audited "Add member to group"."""
    claims = authorize(request, WRITE_MEMBERS)
    state = _state(request)
    group = state.group(request.match_info["id"])
    member_id = ref_id(request, await json_object(request))
    kind, member = state.directory_object(member_id)
    if kind == "directoryRole" or member_id == group["id"]:
        raise bad_request(f"Invalid object identifier '{member_id}'. It cannot be a member of this group.")
    if member_id in group["members"]:
        raise bad_request(
            "One or more added object references already exist for the following modified properties: 'members'."
        )
    group["members"].append(member_id)
    _audit_membership(state, "Add member to group", group, member, kind, claims, added=True)
    return web.Response(status=204)


async def remove_member(request: web.Request) -> web.Response:
    """DELETE /groups/{id}/members/{id}/$ref → 204: https://learn.microsoft.com/graph/api/group-delete-members
    (404 when the object is not a member). Audited "Remove member from group"."""
    claims = authorize(request, WRITE_MEMBERS)
    state = _state(request)
    group = state.group(request.match_info["id"])
    member_id = request.match_info["member"]
    kind, member = state.directory_object(member_id)
    if member_id not in group["members"]:
        raise not_found(
            "One or more removed object references do not exist for the following modified properties: 'members'."
        )
    group["members"].remove(member_id)
    _audit_membership(state, "Remove member from group", group, member, kind, claims, added=False)
    return web.Response(status=204)


def _audit_membership(
    state: TenantState, activity: str, group: dict, member: dict, kind: str, claims: dict, *, added: bool
) -> None:
    ids = ("Group.ObjectID", None, group["id"]) if added else ("Group.ObjectID", group["id"], None)
    names = ("Group.DisplayName", None, group.get("displayName"))
    if not added:
        names = ("Group.DisplayName", group.get("displayName"), None)
    targets = [(member, kind, [ids, names]), (group, "group", [])]
    record_audit(
        state,
        activity,
        targets,
        [],
        claims,
        category="GroupManagement",
        operation_type="Assign" if added else "Unassign",
    )


# --- sessions -------------------------------------------------------------------------------------------


async def revoke_sessions(request: web.Request) -> web.Response:
    """POST /users/{id}/revokeSignInSessions → 200 {"value": true}:
    https://learn.microsoft.com/graph/api/user-revokesigninsessions (resets signInSessionsValidFromDateTime)."""
    authorize(request, REVOKE)
    state = _state(request)
    user = state.user(request.match_info["id"])
    user["signInSessionsValidFromDateTime"] = state.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return web.json_response({"@odata.context": context(request, "Edm.Boolean"), "value": True})


# --- directory audits -----------------------------------------------------------------------------------

_TARGET_TYPES = {"user": "User", "group": "Group", "directoryRole": "Role", "servicePrincipal": "ServicePrincipal"}


def _initiator(state: TenantState, initiated_by: dict[str, Any] | None) -> dict[str, Any]:
    """initiatedBy from a caller's verified claims (app-only: appid; delegated: oid), or as given."""
    if not initiated_by:
        return {"app": None, "user": None}
    if "app" in initiated_by or "user" in initiated_by:
        return {"app": initiated_by.get("app"), "user": initiated_by.get("user")}
    if initiated_by.get("idtyp") == "app" or ("appid" in initiated_by and "scp" not in initiated_by):
        app = state.applications.get(initiated_by.get("appid", ""), {})
        return {
            "app": {
                "appId": initiated_by.get("appid"),
                "displayName": app.get("displayName"),
                "servicePrincipalId": app.get("servicePrincipalId") or initiated_by.get("oid"),
                "servicePrincipalName": app.get("displayName"),
            },
            "user": None,
        }
    user = state.users.get(initiated_by.get("oid", ""), {})
    return {
        "app": None,
        "user": {
            "id": initiated_by.get("oid"),
            "displayName": user.get("displayName"),
            "userPrincipalName": user.get("userPrincipalName"),
            "ipAddress": None,
        },
    }


def _encoded(value: Any) -> str | None:
    """Audit values are JSON text: a string arrives as "\\"value\\"" (directoryaudit's modifiedProperty)."""
    return None if value is None else json.dumps(value)


def _target(state: TenantState, obj: dict[str, Any], kind: str | None, changes: Iterable) -> dict[str, Any]:
    if kind is None:
        kind, _ = state.directory_object(obj["id"])
    return {
        "id": obj["id"],
        "displayName": obj.get("displayName"),
        "type": _TARGET_TYPES.get(kind, "Other"),
        "userPrincipalName": obj.get("userPrincipalName"),
        "groupType": "unknownFutureValue" if kind == "group" else None,
        "modifiedProperties": [
            {"displayName": name, "oldValue": _encoded(old), "newValue": _encoded(new)} for name, old, new in changes
        ],
    }


def record_audit(
    state: TenantState,
    activity: str,
    target: dict[str, Any] | list[tuple[dict[str, Any], str | None, list]],
    modified_properties: Iterable[tuple[str, Any, Any]] = (),
    initiated_by: dict[str, Any] | None = None,
    *,
    category: str = "UserManagement",
    logged_by: str = "Core Directory",
    operation_type: str = "Update",
    result: str = "success",
    additional_details: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Append a directory audit shaped like https://learn.microsoft.com/graph/api/resources/directoryaudit.

    target: the changed directory object (user or group dict), or [(object, kind or None, changes), ...];
    modified_properties: (name, old, new) of the single target; initiated_by: the caller's claims from
    authorize(), or {"app": {...}} / {"user": {...}}. Returns the record (already in the log)."""
    targets = [(target, None, list(modified_properties))] if isinstance(target, dict) else target
    record = {
        "id": f"Directory_{uuid.uuid4()}_{uuid.uuid4().hex[:5].upper()}_{len(state.directory_audits) + 1}",
        "category": category,
        "correlationId": str(uuid.uuid4()),
        "result": result,
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": graph_time(state.now()),
        "loggedByService": logged_by,
        "operationType": operation_type,
        "initiatedBy": _initiator(state, initiated_by),
        "targetResources": [_target(state, obj, kind, changes) for obj, kind, changes in targets],
        "additionalDetails": [{"key": k, "value": v} for k, v in (additional_details or {}).items()],
    }
    state.directory_audits.append(record)
    return record


# $filter on directoryAudits: eq, ge, le, startswith and any (https://learn.microsoft.com/graph/api/directoryaudit-list
# and the properties resources/directoryaudit marks filterable). No advanced queries exist here: ne/not are a 400.
AUDIT_FILTERS: dict[str, dict[str, str]] = {
    "id": {"eq": D},
    "activityDateTime": {"eq": D, "ge": D, "le": D},
    "activityDisplayName": {"eq": D, "startsWith": D},
    "category": {"eq": D},
    "correlationId": {"eq": D},
    "loggedByService": {"eq": D},
    "operationType": {"eq": D},
    "result": {"eq": D},
    "initiatedBy/user/id": {"eq": D},
    "initiatedBy/user/displayName": {"eq": D, "startsWith": D},
    "initiatedBy/user/userPrincipalName": {"eq": D, "startsWith": D},
    "initiatedBy/app/appId": {"eq": D},
    "initiatedBy/app/displayName": {"eq": D, "startsWith": D},
    "targetResources": {"any": D},
    "targetResources/id": {"eq": D},
    "targetResources/displayName": {"eq": D, "startsWith": D},
    "targetResources/userPrincipalName": {"eq": D, "startsWith": D},
    "targetResources/type": {"eq": D},
}
AUDIT_TOP_MAX = 1000  # docs silent on the maximum; the reporting APIs take up to 1,000 per page


def _moment(value: str) -> datetime:
    """An ISO 8601 UTC stamp with up to 7 fractional digits (Python parses 6)."""
    text = value.removesuffix("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    return datetime.fromisoformat(text)


def _audit_view(audit: dict[str, Any]) -> dict[str, Any]:
    """The record as $filter sees it: activityDateTime normalised so ge/le compare instants, not text."""
    return {**audit, "activityDateTime": _moment(audit["activityDateTime"]).strftime("%Y-%m-%dT%H:%M:%S.%f")}


def _normalise_times(text: str) -> str:
    """Filter literals like 2025-03-01 or 2025-03-01T09:00:00Z in the same form as _audit_view."""

    def one(match: re.Match) -> str:
        raw = match.group(0)
        return _moment(raw if "T" in raw else raw + "T00:00:00").strftime("%Y-%m-%dT%H:%M:%S.%f")

    return re.sub(r"(?<!['\w-])\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z)?)?(?![\w'-])", one, text)


async def directory_audits(request: web.Request) -> web.Response:
    """GET /auditLogs/directoryAudits: https://learn.microsoft.com/graph/api/directoryaudit-list ($filter eq, ge,
    le, startswith, any; $top; $orderby activityDateTime; $skiptoken paging; newest first)."""
    authorize(request, AUDIT)
    authorize(request, AUDIT_DIRECTORY)
    text = request.query.get("$filter")
    parsed = parse(_normalise_times(text)) if text else None
    check_filter(parsed, AUDIT_FILTERS, "directoryAudit", advanced=False, directory=False)
    audits = [a for a in _state(request).directory_audits if parsed is None or parsed(_audit_view(a))]
    ascending = request.query.get("$orderby", "").strip().lower() == "activitydatetime asc"
    audits.sort(key=lambda a: _moment(a["activityDateTime"]), reverse=not ascending)
    items = [select(a, request.query.get("$select"), set(a), "directoryAudit") for a in audits]
    return odata_page(request, items, context(request, "auditLogs/directoryAudits"), top_max=AUDIT_TOP_MAX)


async def directory_audit(request: web.Request) -> web.Response:
    """GET /auditLogs/directoryAudits/{id}: https://learn.microsoft.com/graph/api/directoryaudit-get"""
    authorize(request, AUDIT)
    authorize(request, AUDIT_DIRECTORY)
    wanted = request.match_info["id"]
    for audit in _state(request).directory_audits:
        if audit["id"] == wanted:
            return web.json_response({"@odata.context": context(request, "auditLogs/directoryAudits/$entity"), **audit})
    raise missing(wanted)


# --- registration report --------------------------------------------------------------------------------

# methodsRegistered names (https://learn.microsoft.com/graph/api/resources/userregistrationdetails: "such as
# mobilePhone, email, fido2") by the method's type (phones by phoneType).
_REGISTERED = {
    "mobile": "mobilePhone",
    "alternateMobile": "alternateMobilePhone",
    "office": "officePhone",
    "microsoftAuthenticator": "microsoftAuthenticatorPush",
    "softwareOath": "softwareOneTimePasscode",
    "hardwareOath": "hardwareOneTimePasscode",
    "fido2": "fido2",
    "windowsHelloForBusiness": "windowsHelloForBusiness",
    "email": "email",
    "temporaryAccessPass": "temporaryAccessPass",
    "platformCredential": "macOsSecureEnclaveKey",
}
# Strong methods that count for isMfaRegistered (email and the TAP do not).
_MFA = {
    "mobilePhone",
    "alternateMobilePhone",
    "officePhone",
    "microsoftAuthenticatorPush",
    "softwareOneTimePasscode",
    "hardwareOneTimePasscode",
    "fido2",
    "windowsHelloForBusiness",
    "macOsSecureEnclaveKey",
}
_PASSWORDLESS = {"fido2", "windowsHelloForBusiness", "macOsSecureEnclaveKey", "microsoftAuthenticatorPasswordless"}
_SSPR = {"mobilePhone", "alternateMobilePhone", "officePhone", "email", "microsoftAuthenticatorPush"}
_SSPR |= {"softwareOneTimePasscode"}
# userPreferredMethodForSecondaryAuthentication / systemPreferredAuthenticationMethods values (userDefaultAuthentication
# Method: push, oath, voiceMobile, voiceAlternateMobile, voiceOffice, sms, none), strongest first.
_SECONDARY = {
    "microsoftAuthenticatorPush": "push",
    "softwareOneTimePasscode": "oath",
    "hardwareOneTimePasscode": "oath",
    "mobilePhone": "sms",
    "alternateMobilePhone": "voiceAlternateMobile",
    "officePhone": "voiceOffice",
}
_SYSTEM_ORDER = ("push", "oath", "sms", "voiceMobile", "voiceAlternateMobile", "voiceOffice")
# beta's defaultMfaMethod (defaultMfaMethodType).
_DEFAULT_MFA = {
    "microsoftAuthenticatorPush": "microsoftAuthenticatorPush",
    "softwareOneTimePasscode": "softwareOneTimePasscode",
    "hardwareOneTimePasscode": "softwareOneTimePasscode",
    "mobilePhone": "mobilePhone",
    "alternateMobilePhone": "alternateMobilePhone",
    "officePhone": "officePhone",
}


def _method_name(state: TenantState, method: dict[str, Any]) -> str | None:
    short = method.get("@odata.type", "").removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
    if short == "temporaryAccessPass":
        # Only a pass that can still be used counts as registered.
        policy = state.policies.get("temporaryAccessPass", {})
        if not method.get("startDateTime") or not tap_usability(method, policy, state.now())["isUsable"]:
            return None
    return _REGISTERED.get(method.get("phoneType") if short == "phone" else short)


def registration(state: TenantState, user: dict[str, Any], beta: bool = False) -> dict[str, Any]:
    """A userRegistrationDetails computed from the user's methods:
    https://learn.microsoft.com/graph/api/resources/userregistrationdetails"""
    methods: list[str] = []
    default = None
    for method in user.get("methods", []):
        name = _method_name(state, method)
        if name and name not in methods:
            methods.append(name)
        if name and method.get("id") == user.get("defaultMethodId"):
            default = name
    is_admin = any(user["id"] in r["members"] for r in state.directory_roles.values())
    registered = set(methods)
    mfa = bool(registered & _MFA)
    # Admins always have SSPR (two methods required); users' SSPR follows the tenant policy (off unless set).
    sspr_enabled = is_admin or bool(state.policies.get("selfServicePasswordReset", {}).get("enabled", False))
    sspr_registered = len(registered & _SSPR) >= (2 if is_admin else 1)
    system = sorted({_SECONDARY[m] for m in registered if m in _SECONDARY}, key=_SYSTEM_ORDER.index)[:1]
    body = {
        "id": user["id"],
        "userPrincipalName": user.get("userPrincipalName"),
        "userDisplayName": user.get("displayName"),
        "userType": "guest" if user.get("userType") == "Guest" else "member",
        "isAdmin": is_admin,
        "isSsprRegistered": sspr_registered,
        "isSsprEnabled": sspr_enabled,
        "isSsprCapable": sspr_registered and sspr_enabled,
        "isMfaRegistered": mfa,
        "isMfaCapable": mfa,  # every MFA method is allowed by the fixture tenant's policies
        "isPasswordlessCapable": bool(registered & _PASSWORDLESS),
        "lastUpdatedDateTime": graph_time(state.now()),
        "methodsRegistered": methods,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": system,
        "userPreferredMethodForSecondaryAuthentication": _SECONDARY.get(default or "", "none"),
    }
    if beta:
        body["defaultMfaMethod"] = _DEFAULT_MFA.get(default or "", "none")
    return body


# $filter on userRegistrationDetails: the properties the resource page marks filterable (eq; startsWith on the
# names; any(x: x eq '…') on the collections). No advanced queries on reports.
REPORT_FILTERS: dict[str, dict[str, str]] = {
    "id": {"eq": D, "in": D},
    "userPrincipalName": {"eq": D, "startsWith": D},
    "userDisplayName": {"eq": D, "startsWith": D},
    "userType": {"eq": D},
    "isAdmin": {"eq": D},
    "isMfaRegistered": {"eq": D},
    "isMfaCapable": {"eq": D},
    "isPasswordlessCapable": {"eq": D},
    "isSsprRegistered": {"eq": D},
    "isSsprEnabled": {"eq": D},
    "isSsprCapable": {"eq": D},
    "isSystemPreferredAuthenticationMethodEnabled": {"eq": D},
    "userPreferredMethodForSecondaryAuthentication": {"eq": D},
    "defaultMfaMethod": {"eq": D},
    "methodsRegistered": {"any": D},
    "methodsRegistered/": {"eq": D},
    "systemPreferredAuthenticationMethods": {"any": D},
    "systemPreferredAuthenticationMethods/": {"eq": D},
}


async def registration_details(request: web.Request) -> web.Response:
    """GET /reports/authenticationMethods/userRegistrationDetails:
    https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails (paged)."""
    authorize(request, REPORT)
    state = _state(request)
    parsed = parse(request.query.get("$filter"))
    check_filter(parsed, REPORT_FILTERS, "userRegistrationDetails", advanced=False, directory=False)
    beta = version(request) == "beta"
    items = [registration(state, u, beta) for u in state.users.values()]
    if parsed is not None:
        items = [i for i in items if parsed(i)]
    order = request.query.get("$orderby", "").strip()
    if order:
        prop, _, direction = order.partition(" ")
        if prop not in ("userPrincipalName", "userDisplayName"):
            raise bad_request(f"Order by '{prop}' is not supported.", code="BadRequest")
        items.sort(key=lambda i: str(i.get(prop) or "").lower(), reverse=direction.strip().lower() == "desc")
    tail = "reports/authenticationMethods/userRegistrationDetails"
    return odata_page(request, items, context(request, tail))


async def registration_detail(request: web.Request) -> web.Response:
    """GET /reports/authenticationMethods/userRegistrationDetails/{id}:
    https://learn.microsoft.com/graph/api/userregistrationdetails-get"""
    authorize(request, REPORT)
    state = _state(request)
    wanted = request.match_info["id"]
    if wanted not in state.users:
        raise missing(wanted)
    body = registration(state, state.users[wanted], version(request) == "beta")
    tail = "reports/authenticationMethods/userRegistrationDetails/$entity"
    return web.json_response({"@odata.context": context(request, tail), **body})


# --- wiring ---------------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    cast_user_of = r"{cast:(?:microsoft\.)?graph\.(?:group|directoryRole)}"
    cast_members = r"{cast:(?:microsoft\.)?graph\.(?:user|group)}"
    route(app, "GET", "/users", list_users)
    route(app, "GET", "/users/$count", count_users)
    route(app, "GET", "/users/{id}", get_user)
    route(app, "GET", "/users/{id}/manager", get_manager)
    route(app, "PUT", "/users/{id}/manager/$ref", set_manager)
    route(app, "DELETE", "/users/{id}/manager/$ref", remove_manager)
    for relation in ("memberOf", "transitiveMemberOf"):
        route(app, "GET", f"/users/{{id}}/{relation}", member_of)
        route(app, "GET", f"/users/{{id}}/{relation}/{cast_user_of}", member_of)
    route(app, "POST", "/users/{id}/revokeSignInSessions", revoke_sessions)
    route(app, "GET", "/groups/{id}", get_group)
    for relation in ("members", "transitiveMembers"):
        route(app, "GET", f"/groups/{{id}}/{relation}", group_members)
        route(app, "GET", f"/groups/{{id}}/{relation}/{cast_members}", group_members)
    route(app, "POST", "/groups/{id}/members/$ref", add_member)
    route(app, "DELETE", "/groups/{id}/members/{member}/$ref", remove_member)
    route(app, "GET", "/reports/authenticationMethods/userRegistrationDetails", registration_details)
    route(app, "GET", "/reports/authenticationMethods/userRegistrationDetails/{id}", registration_detail)
    route(app, "GET", "/auditLogs/directoryAudits", directory_audits)
    route(app, "GET", "/auditLogs/directoryAudits/{id}", directory_audit)


__all__ = ["GraphError", "record_audit", "route", "transitive_containers", "transitive_members", "user_json"]
