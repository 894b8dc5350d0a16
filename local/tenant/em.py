"""Entitlement Management routes: Graph v1.0 assignmentRequests/assignments and the EM control API.

Graph (application permissions; reads take EntitlementManagement.Read.All or .ReadWrite.All, writes .ReadWrite.All;
instead of either, a service principal may hold a catalog-scoped EM role on the catalog of the request's or
assignment's package: Catalog owner, Access package manager or Access package assignment manager for both, Catalog
reader for reads (https://learn.microsoft.com/entra/id-governance/entitlement-management-delegate; CONTRACTS.md:
resume with "Access package assignment manager"). Lists then show only those catalogs' items.)
- GET  /identityGovernance/entitlementManagement/assignmentRequests/{id}  ($expand, $select)
  https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-get
- GET  /identityGovernance/entitlementManagement/assignmentRequests  ($filter, $expand, $select, $top paging)
  https://learn.microsoft.com/graph/api/entitlementmanagement-list-assignmentrequests
- POST /identityGovernance/entitlementManagement/assignmentRequests  (adminAdd, adminRemove) → 201
  https://learn.microsoft.com/graph/api/entitlementmanagement-post-assignmentrequests
- POST /identityGovernance/entitlementManagement/assignmentRequests/{id}/resume → 204
  https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-resume
- GET  /identityGovernance/entitlementManagement/assignments[/{id}]  ($filter, $expand, $select)
  https://learn.microsoft.com/graph/api/entitlementmanagement-list-assignments
Each is served under /v1.0 and /beta (same paths; beta's older accessPackageAssignmentRequests paths are not).

Control API (no auth; the tenant listens on loopback only):
| POST /_control/em/requests {requestorId, targetId, accessPackageId, requestType?, justification?, answers?} → 201 |
| GET  /_control/em/requests/{id} → {request, callouts: [{stage, customExtensionStageInstanceId, status, attempts, |
|      lastHttpStatus, sentBody, ...}], assignment, approvals}                                                    |
| POST /_control/em/requests/{id}/approve {approverId, justification?}  |  .../deny  (the current approval stage) |
| POST /_control/em/extensions/url {url}    | point every custom extension at url                               |
| POST /_control/em/extensions {extension}  | register one; the connection test is sent right after            |
| POST /_control/em/relay {appId|null}      | sign callouts as a relay identity (or as EM again)                |
| POST /_control/em/tick                    | callback timeouts, approval deadlines, expiry, with the tenant clock |
| GET  /_control/em/callouts                | every callout attempt sent, newest last                          |
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .auth import caller
from .em_engine import Engine, engine
from .em_shapes import (
    ASSIGNMENT_FIELDS,
    ASSIGNMENT_RELATIONS,
    ASSIGNMENT_TYPE,
    REQUEST_FIELDS,
    REQUEST_RELATIONS,
    REQUEST_TYPE,
    instance_json,
    matcher,
    package_json,
    parse_expand,
    policy_json,
    select,
    subject,
)
from .errors import GraphError, bad_request
from .gov_common import governance
from .odata import page

BASE = "/identityGovernance/entitlementManagement"
READ = ("EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All")
WRITE = ("EntitlementManagement.ReadWrite.All",)
CATALOG_OWNER = "ae79f266-94d4-4dab-b730-feca7e132178"
CATALOG_READER = "44272f93-9762-48e8-af59-1b5351b1d6b3"
PACKAGE_MANAGER = "7f480852-ebdc-47d4-87de-0d8498384a83"
ASSIGNMENT_MANAGER = "e2182095-804a-4656-ae11-64734e9b7ae5"
CATALOG_WRITE = frozenset({CATALOG_OWNER, PACKAGE_MANAGER, ASSIGNMENT_MANAGER})
CATALOG_READ = CATALOG_WRITE | {CATALOG_READER}
VERSIONS = ("/v1.0", "/beta")
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#identityGovernance/entitlementManagement/"


def _engine(request: web.Request) -> Engine:
    return engine(request.app[STATE])


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None


# --- who may act on what ---------------------------------------------------------------------------------


def _denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _catalogs_with(request: web.Request, claims: dict[str, Any], roles: frozenset[str]) -> set[str]:
    """The catalogs on which the caller's service principal holds one of `roles`."""
    held = set()
    for assignment in governance(request.app[STATE])["roleAssignments"].values():
        if assignment.get("principalId") == claims.get("oid") and assignment.get("roleDefinitionId") in roles:
            kind, _, catalog_id = str(assignment.get("appScopeId") or "").strip("/").partition("/")
            if kind == "AccessPackageCatalog":
                held.add(catalog_id)
    return held


def _scope(request: web.Request, permissions: tuple[str, ...], roles: frozenset[str]) -> set[str] | None:
    """None when a tenant-wide permission covers the call, else the catalogs the caller's roles cover (403 if none)."""
    claims = caller(request)
    if (set(claims.get("roles", [])) | set(claims.get("scp", "").split())) & set(permissions):
        return None
    catalogs = _catalogs_with(request, claims, roles)
    if not catalogs:
        raise _denied()
    return catalogs


def _in_scope(em: Engine, item: dict[str, Any], catalogs: set[str] | None) -> bool:
    return catalogs is None or em.package(item["_packageId"]).get("catalogId") in catalogs


# --- Graph shapes -----------------------------------------------------------------------------------------


def request_json(em: Engine, item: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in item.items() if not k.startswith("_")}
    out["customExtensionCalloutInstances"] = [instance_json(i) for i in item["customExtensionCalloutInstances"]]
    if "requestor" in expand:
        out["requestor"] = subject(em.state, item["_requestorId"]) if item.get("_requestorId") else None
    if "accessPackage" in expand:
        out["accessPackage"] = package_json(em.package(item["_packageId"]))
    if "assignment" in expand:
        out["assignment"] = assignment_json(em, em.assignments[item["_assignmentId"]], expand["assignment"])
    return out


def assignment_json(em: Engine, item: dict[str, Any], expand: dict[str, dict] | None = None) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if not k.startswith("_")}
    expand = expand or {}
    if "target" in expand:
        out["target"] = subject(em.state, item["_targetId"])
    if "accessPackage" in expand:
        out["accessPackage"] = package_json(em.package(item["_packageId"]))
    if "assignmentPolicy" in expand:
        out["assignmentPolicy"] = policy_json(em.policy(item))
    return out


def _request_view(em: Engine, item: dict[str, Any]) -> dict[str, Any]:
    """What $filter on assignmentRequests may name: its properties, accessPackage/id, requestor/objectId."""
    return request_json(em, item, {"requestor": {}, "accessPackage": {}, "assignment": {"target": {}}})


def _assignment_view(em: Engine, item: dict[str, Any]) -> dict[str, Any]:
    return assignment_json(em, item, {"target": {}, "accessPackage": {}, "assignmentPolicy": {}})


# --- Graph handlers ---------------------------------------------------------------------------------------


async def get_request(request: web.Request) -> web.Response:
    em = _engine(request)
    scope = _scope(request, READ, CATALOG_READ)
    found = em.request(request.match_info["id"])
    if not _in_scope(em, found, scope):
        raise _denied()
    expand = parse_expand(request.query.get("$expand"), REQUEST_RELATIONS, REQUEST_TYPE)
    body = request_json(em, found, expand)
    body = select(body, request.query.get("$select"), REQUEST_FIELDS, REQUEST_RELATIONS, REQUEST_TYPE)
    return web.json_response({"@odata.context": CONTEXT + "assignmentRequests/$entity", **body})


async def list_requests(request: web.Request) -> web.Response:
    """$filter examples in the docs: state eq, accessPackage/id eq, requestor/objectId eq (joined with and/or)."""
    scope = _scope(request, READ, CATALOG_READ)
    em = _engine(request)
    expand = parse_expand(request.query.get("$expand"), REQUEST_RELATIONS, REQUEST_TYPE)
    test = matcher(request.query.get("$filter"))
    items = [
        r for r in em.requests.values() if _in_scope(em, r, scope) and (test is None or test(_request_view(em, r)))
    ]
    fields = request.query.get("$select")
    values = [
        select(request_json(em, r, expand), fields, REQUEST_FIELDS, REQUEST_RELATIONS, REQUEST_TYPE) for r in items
    ]
    return page(request, values, CONTEXT + "assignmentRequests")


async def resume(request: web.Request) -> web.Response:
    em = _engine(request)
    scope = _scope(request, WRITE, CATALOG_WRITE)  # 403 before the lookup for a caller with no EM access at all
    if not _in_scope(em, em.request(request.match_info["id"]), scope):
        raise _denied()
    em.resume(request.match_info["id"], await _json(request))
    return web.Response(status=204)


def _target_of(assignment: dict[str, Any]) -> str | None:
    target = assignment.get("target") or {}
    return assignment.get("targetId") or assignment.get("specificAllowedTargetId") or target.get("objectId")


async def create_request(request: web.Request) -> web.Response:
    """An application may create adminAdd and adminRemove requests (userAdd/userUpdate need a signed-in user)."""
    scope = _scope(request, WRITE, CATALOG_WRITE)
    claims = caller(request)
    em = _engine(request)
    body = await _json(request)
    if not isinstance(body, dict):
        raise bad_request("The request body must be an accessPackageAssignmentRequest object.")
    kind = str(body.get("requestType") or "").lower()  # the docs' own examples write AdminAdd and UserAdd
    # Older examples name the navigation accessPackageAssignment; v1.0's property is assignment.
    assignment = body.get("assignment") or body.get("accessPackageAssignment") or {}
    if kind == "adminremove":
        if not assignment.get("id"):
            raise bad_request("An adminRemove request needs assignment.id.")
        if not _in_scope(em, em.assignment(assignment["id"]), scope):
            raise _denied()
        created = em.remove(assignment["id"], "adminRemove", body.get("justification") or "", claims.get("oid"))
    elif kind == "adminadd":
        for field in ("accessPackageId", "assignmentPolicyId"):
            if not assignment.get(field):
                raise bad_request(f"An adminAdd request needs assignment.{field}.")
        target = _target_of(assignment)
        if not target:
            raise bad_request("An adminAdd request needs assignment.targetId (or target.objectId).")
        if scope is not None and em.package(assignment["accessPackageId"]).get("catalogId") not in scope:
            raise _denied()
        created = em.submit(
            claims.get("oid", ""),
            target,
            assignment["accessPackageId"],
            "adminAdd",
            body.get("justification") or "",
            body.get("answers"),
            policy_id=assignment["assignmentPolicyId"],
        )
    elif kind in ("useradd", "userupdate", "userremove", "onbehalfadd"):
        raise bad_request(f"requestType {body.get('requestType')} needs a signed-in user; applications use adminAdd.")
    else:
        raise bad_request("requestType must be adminAdd or adminRemove.")
    return web.json_response(
        {"@odata.context": CONTEXT + "assignmentRequests/$entity", **request_json(em, created, {})}, status=201
    )


async def list_assignments(request: web.Request) -> web.Response:
    """$filter examples in the docs: state eq 'Delivered', target/objectid eq, accessPackage/id eq, with and."""
    scope = _scope(request, READ, CATALOG_READ)
    em = _engine(request)
    expand = parse_expand(request.query.get("$expand"), ASSIGNMENT_RELATIONS, ASSIGNMENT_TYPE)
    test = matcher(request.query.get("$filter"))
    items = [
        a
        for a in em.assignments.values()
        if _in_scope(em, a, scope) and (test is None or test(_assignment_view(em, a)))
    ]
    fields = request.query.get("$select")
    values = [
        select(assignment_json(em, a, expand), fields, ASSIGNMENT_FIELDS, ASSIGNMENT_RELATIONS, ASSIGNMENT_TYPE)
        for a in items
    ]
    return page(request, values, CONTEXT + "assignments")


async def get_assignment(request: web.Request) -> web.Response:
    em = _engine(request)
    scope = _scope(request, READ, CATALOG_READ)
    found = em.assignment(request.match_info["id"])
    if not _in_scope(em, found, scope):
        raise _denied()
    expand = parse_expand(request.query.get("$expand"), ASSIGNMENT_RELATIONS, ASSIGNMENT_TYPE)
    body = select(
        assignment_json(em, found, expand),
        request.query.get("$select"),
        ASSIGNMENT_FIELDS,
        ASSIGNMENT_RELATIONS,
        ASSIGNMENT_TYPE,
    )
    return web.json_response({"@odata.context": CONTEXT + "assignments/$entity", **body})


# --- control ------------------------------------------------------------------------------------------------


async def control_submit(request: web.Request) -> web.Response:
    body = await _json(request)
    for field in ("requestorId", "targetId", "accessPackageId"):
        if not body.get(field):
            raise bad_request(f"{field} is required")
    em = _engine(request)
    created = em.submit(
        body["requestorId"],
        body["targetId"],
        body["accessPackageId"],
        body.get("requestType"),
        body.get("justification") or "",
        body.get("answers"),
    )
    return web.json_response(request_json(em, created, {}), status=201)


def _callout_view(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "stage": instance["_stage"],
        "customExtensionStageInstanceId": instance["id"],
        "customExtensionId": instance["customExtensionId"],
        "status": instance["status"],
        "detail": instance.get("detail"),
        "externalCorrelationId": instance.get("externalCorrelationId"),
        "attempts": instance["_attempts"],
        "lastHttpStatus": instance["_lastHttpStatus"],
        "sentBody": instance.get("_sentBody"),
    }


async def control_state(request: web.Request) -> web.Response:
    em = _engine(request)
    found = em.request(request.match_info["id"])
    return web.json_response(
        {
            "request": request_json(em, found, {}),
            "callouts": [_callout_view(i) for i in found["customExtensionCalloutInstances"]],
            "assignment": assignment_json(em, em.assignments[found["_assignmentId"]], {"target": {}}),
            "approvals": found["_approvals"],
        }
    )


async def control_decide(request: web.Request) -> web.Response:
    body = await _json(request) if request.can_read_body else {}
    if not body.get("approverId"):
        raise bad_request("approverId is required")
    em = _engine(request)
    decide = em.approve if request.match_info["decision"] == "approve" else em.deny
    decided = decide(request.match_info["id"], body["approverId"], body.get("justification") or "")
    return web.json_response(request_json(em, decided, {}))


async def control_extension_url(request: web.Request) -> web.Response:
    url = (await _json(request)).get("url")
    if not url:
        raise bad_request("url is required")
    for extension in _engine(request).extensions.values():
        extension.setdefault("endpointConfiguration", {})["url"] = url
    return web.json_response({"url": url})


async def control_register_extension(request: web.Request) -> web.Response:
    extension = _engine(request).register_extension(await _json(request))
    return web.json_response(extension, status=201)


async def control_relay(request: web.Request) -> web.Response:
    em = _engine(request)
    em.relay_app_id = (await _json(request)).get("appId")
    return web.json_response({"appId": em.relay_app_id})


async def control_tick(request: web.Request) -> web.Response:
    return web.json_response(_engine(request).tick())


async def control_callouts(request: web.Request) -> web.Response:
    return web.json_response(_engine(request).sent)


async def _stop_background(app: web.Application) -> None:
    """Cancel callouts still in flight when the tenant stops, so their HTTP sessions close cleanly."""
    tasks = list(engine(app[STATE]).tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def setup(app: web.Application) -> None:
    app.on_cleanup.append(_stop_background)
    r = app.router
    for version in VERSIONS:
        r.add_get(f"{version}{BASE}/assignmentRequests", list_requests)
        r.add_post(f"{version}{BASE}/assignmentRequests", create_request)
        r.add_get(f"{version}{BASE}/assignmentRequests/{{id}}", get_request)
        r.add_post(f"{version}{BASE}/assignmentRequests/{{id}}/resume", resume)
        r.add_get(f"{version}{BASE}/assignments", list_assignments)
        r.add_get(f"{version}{BASE}/assignments/{{id}}", get_assignment)
    r.add_post("/_control/em/requests", control_submit)
    r.add_get("/_control/em/requests/{id}", control_state)
    r.add_post("/_control/em/requests/{id}/{decision:approve|deny}", control_decide)
    r.add_post("/_control/em/extensions/url", control_extension_url)
    r.add_post("/_control/em/extensions", control_register_extension)
    r.add_post("/_control/em/relay", control_relay)
    r.add_post("/_control/em/tick", control_tick)
    r.add_get("/_control/em/callouts", control_callouts)
