"""EM configuration routes of the local tenant: catalogs, their custom workflow extensions, their resources and
resource requests. Catalogs and extensions live in the EM engine (em_engine.Engine), so what is created here is
what the engine runs requests against.

Documentation followed (Graph v1.0):
- List/create catalogs: https://learn.microsoft.com/graph/api/entitlementmanagement-list-catalogs ,
  https://learn.microsoft.com/graph/api/entitlementmanagement-post-catalogs (displayName, description, state,
  isExternallyVisible; 201); get/update: accesspackagecatalog-get, accesspackagecatalog-update (PATCH → 204).
- Custom extensions: https://learn.microsoft.com/graph/api/accesspackagecatalog-post-accesspackagecustomworkflowextensions
  (POST .../catalogs/{id}/customWorkflowExtensions; @odata.type must say which of the two types; 201),
  accesspackagecatalog-list-accesspackagecustomworkflowextensions, customaccesspackageworkflowextension-update
  (PATCH with @odata.type). EM sends a connection test when an extension is created (the engine does that).
- Catalog resources: https://learn.microsoft.com/graph/api/accesspackagecatalog-list-resources ($filter originId,
  $expand roles,scopes); a group has the roles Member and Owner (originId Member_<id> / Owner_<id>) and a root
  scope (https://learn.microsoft.com/graph/api/resources/accesspackageresourcerole).
- Resource requests: https://learn.microsoft.com/graph/api/entitlementmanagement-post-resourcerequests
  ({requestType: adminAdd|adminRemove, resource: {originId, originSystem}, catalog: {id}} → 201).
Only AadGroup resources are emulated: the product adds nothing else to a catalog.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import em_callouts as callouts
from .auth import authorize
from .errors import GraphError, bad_request, json_object, not_found
from .gov_common import (
    EM_BASE,
    EM_READ,
    EM_WRITE,
    VERSIONS,
    collection,
    em_of,
    entity,
    expansions,
    filtered,
    governance,
    new_id,
    now,
    public,
    required,
    state_of,
)

CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#identityGovernance/entitlementManagement/"
CATALOG_WRITABLE = {"displayName", "description", "state", "isExternallyVisible"}
CATALOG_STATES = {"published", "unpublished"}
EXTENSION_WRITABLE = {
    "displayName",
    "description",
    "endpointConfiguration",
    "authenticationConfiguration",
    "clientConfiguration",
    "callbackConfiguration",
}
ENDPOINTS = {
    "#microsoft.graph.logicAppTriggerEndpointConfiguration",
    # Documented for custom authentication extensions only; whether EM accepts it is unconfirmed (CONTRACTS.md).
    # The local tenant accepts it so the provisioning CLI's clearly-marked direct-URL option can be exercised.
    "#microsoft.graph.httpRequestEndpoint",
}


def catalog(request: web.Request, catalog_id: str) -> dict[str, Any]:
    found = em_of(request).catalogs.get(catalog_id)
    if found is None:
        raise not_found(f"Catalog '{catalog_id}' was not found.", code="ResourceNotFound")
    return found


def extension_json(extension: dict[str, Any]) -> dict[str, Any]:
    return public(extension, {"catalogId"})


# --- catalogs ---------------------------------------------------------------------------------------------


async def list_catalogs(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    values = filtered(request, [public(c) for c in em_of(request).catalogs.values()])
    return collection(CONTEXT + "catalogs", values)


def _check_catalog(body: dict[str, Any]) -> None:
    if "state" in body and body["state"] not in CATALOG_STATES:
        raise bad_request("state must be published or unpublished.")


async def create_catalog(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    body = await json_object(request, CATALOG_WRITABLE)
    required(body, "displayName")
    _check_catalog(body)
    stamp = now(request)
    created = {
        "id": new_id(),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "catalogType": "userManaged",
        "state": body.get("state", "published"),
        "isExternallyVisible": bool(body.get("isExternallyVisible", False)),
        "createdDateTime": stamp,
        "modifiedDateTime": stamp,
    }
    em_of(request).catalogs[created["id"]] = created
    return entity(CONTEXT + "catalogs/$entity", created, 201)


async def get_catalog(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    return entity(CONTEXT + "catalogs/$entity", public(catalog(request, request.match_info["id"])))


async def update_catalog(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    found = catalog(request, request.match_info["id"])
    body = await json_object(request, CATALOG_WRITABLE)
    _check_catalog(body)
    found.update(body, modifiedDateTime=now(request))
    return web.Response(status=204)


# --- custom workflow extensions ----------------------------------------------------------------------------


def _validate_extension(body: dict[str, Any]) -> dict[str, Any]:
    """What EM refuses on create/update: the engine's rules plus the documented required properties."""
    required(body, "displayName", "endpointConfiguration", "authenticationConfiguration")
    endpoint_type = (body["endpointConfiguration"] or {}).get("@odata.type", "")
    if "#" + endpoint_type.lstrip("#") not in ENDPOINTS:
        raise bad_request("endpointConfiguration.@odata.type must be logicAppTriggerEndpointConfiguration.")
    if endpoint_type.endswith("logicAppTriggerEndpointConfiguration"):
        required(body, "endpointConfiguration.logicAppWorkflowName", "endpointConfiguration.resourceGroupName")
        required(body, "endpointConfiguration.subscriptionId")
    if endpoint_type.endswith("httpRequestEndpoint") and not body["endpointConfiguration"].get("url"):
        # httpRequestEndpoint names its address targetUrl; the engine posts to url.
        body["endpointConfiguration"]["url"] = body["endpointConfiguration"].get("targetUrl")
    return callouts.validate_extension(body)


async def list_extensions(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    catalog_id = catalog(request, request.match_info["id"])["id"]
    values = [extension_json(e) for e in em_of(request).extensions.values() if e.get("catalogId") == catalog_id]
    return collection(CONTEXT + f"catalogs('{catalog_id}')/customWorkflowExtensions", filtered(request, values))


async def create_extension(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    found = catalog(request, request.match_info["id"])
    body = await json_object(request, EXTENSION_WRITABLE)
    if not body.get("@odata.type"):
        raise bad_request("@odata.type is required: say which custom extension type to create.")
    checked = _validate_extension(body)
    stamp = now(request)
    checked.update(catalogId=found["id"], createdDateTime=stamp, lastModifiedDateTime=stamp)
    em = em_of(request)
    registered = em.register_extension({k: v for k, v in checked.items() if k != "id"})
    return entity(CONTEXT + "customCalloutExtension/$entity", extension_json(registered), 201)


def _extension(request: web.Request) -> dict[str, Any]:
    catalog_id = catalog(request, request.match_info["id"])["id"]
    found = em_of(request).extensions.get(request.match_info["extension_id"])
    if found is None or found.get("catalogId") != catalog_id:
        raise not_found(f"Custom extension '{request.match_info['extension_id']}' was not found.", "ResourceNotFound")
    return found


async def get_extension(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    return entity(CONTEXT + "customCalloutExtension/$entity", extension_json(_extension(request)))


async def update_extension(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    found = _extension(request)
    body = await json_object(request, EXTENSION_WRITABLE)
    if str(body.get("@odata.type", "")).lstrip("#") != callouts.kind(found):
        raise bad_request("@odata.type is required on update and must match the extension's type.")
    merged = {**{k: v for k, v in found.items() if k != "id"}, **body}
    _validate_extension(merged)
    found.update(body, lastModifiedDateTime=now(request))
    return web.Response(status=204)


# --- resources and resource requests ------------------------------------------------------------------------


def _group_resource(group: dict[str, Any], stamp: str) -> dict[str, Any]:
    gid = group["id"]
    resource_id = new_id()
    return {
        "id": resource_id,
        "displayName": group.get("displayName"),
        "description": group.get("description"),
        "originId": gid,
        "originSystem": "AadGroup",
        "createdDateTime": stamp,
        "roles": [
            {"id": new_id(), "displayName": name, "originSystem": "AadGroup", "originId": f"{name}_{gid}"}
            for name in ("Member", "Owner")
        ],
        "scopes": [
            {
                "id": new_id(),
                "displayName": "Root",
                "description": "Root Scope",
                "originId": gid,
                "originSystem": "AadGroup",
                "isRootScope": True,
            }
        ],
    }


def catalog_resources(request: web.Request, catalog_id: str) -> dict[str, dict[str, Any]]:
    return governance(state_of(request))["resources"].setdefault(catalog_id, {})


def resource_json(resource: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("roles", "scopes") or k in expand}


async def list_resources(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    catalog_id = catalog(request, request.match_info["id"])["id"]
    expand = expansions(request, {"roles", "scopes"}, "microsoft.graph.accessPackageResource")
    items = filtered(request, list(catalog_resources(request, catalog_id).values()))
    values = [resource_json(r, expand) for r in items]
    return collection(CONTEXT + f"catalogs('{catalog_id}')/resources", values)


async def create_resource_request(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    body = await json_object(request, {"requestType", "resource", "catalog", "justification"})
    required(body, "requestType", "resource.originId", "resource.originSystem", "catalog.id")
    kind = str(body["requestType"]).lower()
    if kind not in ("adminadd", "adminremove"):
        raise bad_request("requestType must be adminAdd or adminRemove.")
    if body["resource"]["originSystem"] != "AadGroup":
        raise bad_request("The local tenant emulates AadGroup resources only.")
    catalog_id = catalog(request, body["catalog"]["id"])["id"]
    group = state_of(request).group(body["resource"]["originId"])
    resources = catalog_resources(request, catalog_id)
    present = next((r for r in resources.values() if r["originId"] == group["id"]), None)
    if kind == "adminadd":
        if present is not None:
            # The docs name no error for a resource already in the catalog; a 400 that changes nothing.
            raise GraphError(400, "ResourceAlreadyOnboarded", "The resource is already in the catalog.")
        created = _group_resource(group, now(request))
        resources[created["id"]] = created
    elif present is None:
        raise not_found("The resource is not in the catalog.", code="ResourceNotFound")
    else:
        resources.pop(present["id"])
    answer = {
        "id": new_id(),
        "requestType": body["requestType"],
        "state": "delivered",
        "createdDateTime": now(request),
        "justification": body.get("justification"),
    }
    return entity(CONTEXT + "resourceRequests/$entity", answer, 201)


def setup(app: web.Application) -> None:
    r = app.router
    for version in VERSIONS:
        base = f"{version}{EM_BASE}"
        r.add_get(f"{base}/catalogs", list_catalogs)
        r.add_post(f"{base}/catalogs", create_catalog)
        r.add_get(f"{base}/catalogs/{{id}}", get_catalog)
        r.add_patch(f"{base}/catalogs/{{id}}", update_catalog)
        r.add_get(f"{base}/catalogs/{{id}}/customWorkflowExtensions", list_extensions)
        r.add_post(f"{base}/catalogs/{{id}}/customWorkflowExtensions", create_extension)
        r.add_get(f"{base}/catalogs/{{id}}/customWorkflowExtensions/{{extension_id}}", get_extension)
        r.add_patch(f"{base}/catalogs/{{id}}/customWorkflowExtensions/{{extension_id}}", update_extension)
        r.add_get(f"{base}/catalogs/{{id}}/resources", list_resources)
        r.add_post(f"{base}/resourceRequests", create_resource_request)
