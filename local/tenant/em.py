"""Entitlement Management routes: Graph v1.0 assignmentRequests/assignments and the EM control API.

Graph (each needs EntitlementManagement.Read.All or .ReadWrite.All for reads, .ReadWrite.All for writes):
- GET  /identityGovernance/entitlementManagement/assignmentRequests[/{id}]  ($expand, $filter on state)
  https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-get
- POST /identityGovernance/entitlementManagement/assignmentRequests/{id}/resume → 204
  https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-resume
- POST /identityGovernance/entitlementManagement/assignmentRequests (adminAdd, adminRemove) → 201
  https://learn.microsoft.com/graph/api/entitlementmanagement-post-assignmentrequests
- GET  /identityGovernance/entitlementManagement/assignments[/{id}]  ($expand=target, $filter on target/objectId)
  https://learn.microsoft.com/graph/api/entitlementmanagement-list-assignments

Control API (no auth, loopback only):
| POST /_control/em/requests {requestorId, targetId, accessPackageId, requestType?, justification?, answers?} | submit |
| GET  /_control/em/requests/{id} → {request, callouts: [{stage, instance id, status, ...}], assignment} |
| POST /_control/em/requests/{id}/approve {approverId, justification?} / .../deny                          | decide |
| POST /_control/em/extensions/url {url}   | point every custom extension at url                             |
| POST /_control/em/extensions {extension} | register an extension and send the connection test              |
| POST /_control/em/relay {appId|null}     | sign callouts as a relay identity (or EM again)                 |
| POST /_control/em/tick                   | evaluate callback timeouts and expiry with the tenant clock     |
| GET  /_control/em/callouts               | every callout attempt sent, oldest first                        |
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from .appkeys import STATE
from .auth import authorize
from .em_engine import engine
from .errors import bad_request

BASE = "/identityGovernance/entitlementManagement"
READ = ("EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All")
WRITE = ("EntitlementManagement.ReadWrite.All",)
VERSIONS = ("/v1.0", "/beta")


def parse_expand(text: str | None) -> dict[str, dict]:
    """'a,b($expand=c)' → {'a': {}, 'b': {'c': {}}} (names lower-cased; nested $expand only)."""
    result: dict[str, dict] = {}
    if not text:
        return result
    depth, start, parts = 0, 0, []
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    for part in (p.strip() for p in parts if p.strip()):
        match = re.match(r"^([A-Za-z]+)(?:\((.*)\))?$", part)
        if not match:
            raise bad_request(f"Invalid $expand: {part}")
        nested = {}
        for option in (match.group(2) or "").split(";"):
            if option.strip().lower().startswith("$expand="):
                nested = parse_expand(option.split("=", 1)[1])
        result[match.group(1).lower()] = nested
    return result


def _engine(request: web.Request):
    return engine(request.app[STATE])


async def get_request(request: web.Request) -> web.Response:
    authorize(request, READ)
    em = _engine(request)
    found = em.request(request.match_info["id"])
    body = em.request_json(found, parse_expand(request.query.get("$expand")))
    body["@odata.context"] = f"https://graph.microsoft.com/v1.0/$metadata#{BASE[1:]}/assignmentRequests/$entity"
    return web.json_response(body)


async def list_requests(request: web.Request) -> web.Response:
    authorize(request, READ)
    em = _engine(request)
    expand = parse_expand(request.query.get("$expand"))
    items = list(em.requests.values())
    text = request.query.get("$filter")
    if text:
        match = re.fullmatch(r"\s*state\s+eq\s+'(\w+)'\s*", text)
        if not match:
            raise bad_request("Only $filter=state eq '<state>' is supported here.")
        items = [r for r in items if r["state"] == match.group(1)]
    return web.json_response(
        {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{BASE[1:]}/assignmentRequests",
            "value": [em.request_json(r, expand) for r in items],
        }
    )


async def resume(request: web.Request) -> web.Response:
    authorize(request, WRITE)
    try:
        payload = await request.json()
    except ValueError:
        raise bad_request("The body is not valid JSON.") from None
    _engine(request).resume(request.match_info["id"], payload)
    return web.Response(status=204)


async def create_request(request: web.Request) -> web.Response:
    authorize(request, WRITE)
    em = _engine(request)
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The body is not valid JSON.") from None
    kind = body.get("requestType")
    if kind == "adminRemove":
        assignment_id = (body.get("assignment") or {}).get("id")
        if not assignment_id:
            raise bad_request("adminRemove needs assignment.id.")
        created = em.remove(assignment_id, "adminRemove", body.get("justification") or "")
    elif kind == "adminAdd":
        assignment = body.get("assignment") or {}
        for field in ("accessPackageId", "assignmentPolicyId", "targetId"):
            if not assignment.get(field):
                raise bad_request(f"adminAdd needs assignment.{field}.")
        created = em.submit(
            request.app[STATE].tenant.get("functionAppIdentity", ""),
            assignment["targetId"],
            assignment["accessPackageId"],
            "adminAdd",
            body.get("justification") or "",
        )
    else:
        raise bad_request("requestType must be adminAdd or adminRemove for an application.")
    return web.json_response(em.request_json(created, {}), status=201)


async def list_assignments(request: web.Request) -> web.Response:
    authorize(request, READ)
    em = _engine(request)
    expand = parse_expand(request.query.get("$expand"))
    items = list(em.assignments.values())
    text = request.query.get("$filter")
    if text:
        match = re.fullmatch(r"\s*target/objectId\s+eq\s+'([0-9a-fA-F-]{36})'\s*", text)
        if not match:
            raise bad_request("Only $filter=target/objectId eq '<id>' is supported here.")
        items = [a for a in items if a["_targetId"] == match.group(1)]
    return web.json_response({"value": [em.assignment_json(a, expand) for a in items]})


async def get_assignment(request: web.Request) -> web.Response:
    authorize(request, READ)
    em = _engine(request)
    found = em.assignments.get(request.match_info["id"])
    if found is None:
        raise bad_request("No such assignment.")
    return web.json_response(em.assignment_json(found, parse_expand(request.query.get("$expand"))))


# --- control ------------------------------------------------------------------------------------------


async def control_submit(request: web.Request) -> web.Response:
    body = await request.json()
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
    return web.json_response(em.request_json(created, {}), status=201)


async def control_state(request: web.Request) -> web.Response:
    em = _engine(request)
    found = em.request(request.match_info["id"])
    callouts = [
        {
            "stage": i.get("_stage"),
            "customExtensionStageInstanceId": i["id"],
            "customExtensionId": i.get("customExtensionId"),
            "status": i["status"],
            "detail": i.get("detail"),
            "attempts": i.get("_attempts"),
            "lastHttpStatus": i.get("_lastHttpStatus"),
            "sentBody": i.get("_sentBody"),
        }
        for i in found["customExtensionCalloutInstances"]
    ]
    return web.json_response(
        {
            "request": em.request_json(found, {}),
            "callouts": callouts,
            "approvals": found["_approvals"],
            "assignment": em.assignment_json(em.assignments[found["_assignmentId"]], {"target": {}}),
        }
    )


async def control_decide(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    if not body.get("approverId"):
        raise bad_request("approverId is required")
    em = _engine(request)
    decide = em.approve if request.match_info["decision"] == "approve" else em.deny
    decided = decide(request.match_info["id"], body["approverId"], body.get("justification") or "")
    return web.json_response(em.request_json(decided, {}))


async def control_extension_url(request: web.Request) -> web.Response:
    url = (await request.json()).get("url")
    if not url:
        raise bad_request("url is required")
    for extension in _engine(request).extensions.values():
        extension["endpointConfiguration"]["url"] = url
    return web.json_response({"url": url})


async def control_register_extension(request: web.Request) -> web.Response:
    em = _engine(request)
    extension = await request.json()
    extension.setdefault("id", str(uuid.uuid4()))
    em.extensions[extension["id"]] = extension
    ok = await em.connection_test(extension)
    return web.json_response({"id": extension["id"], "connectionTest": "succeeded" if ok else "failed"}, status=201)


async def control_relay(request: web.Request) -> web.Response:
    _engine(request).relay_app_id = (await request.json()).get("appId")
    return web.json_response({"appId": _engine(request).relay_app_id})


async def control_tick(request: web.Request) -> web.Response:
    return web.json_response(_engine(request).tick())


async def control_callouts(request: web.Request) -> web.Response:
    return web.json_response(_engine(request).sent)


def setup(app: web.Application) -> None:
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
