"""EM configuration routes of the local tenant: access packages, their resource role scopes and assignment
policies. Packages and policies live in the EM engine, so a policy created here is the one requests then follow
(approval stages, expiry, custom extension stages, group membership on delivery).

Documentation followed (Graph v1.0):
- Access packages: https://learn.microsoft.com/graph/api/entitlementmanagement-post-accesspackages (catalog.id and
  displayName required; 201), entitlementmanagement-list-accesspackages ($filter displayName eq, $expand),
  accesspackage-get ($expand resourceRoleScopes($expand=role,scope)), accesspackage-update (PATCH → 204).
- Resource role scopes: https://learn.microsoft.com/graph/api/accesspackage-post-resourcerolescopes (role with
  originId/originSystem/resource, scope with originId/originSystem; the resource must already be in the package's
  catalog; id "<role id>_<scope id>"; 201).
- Assignment policies: https://learn.microsoft.com/graph/api/entitlementmanagement-post-assignmentpolicies
  (accessPackage.id; allowedTargetScope values; expiration; requestorSettings; requestApprovalSettings.stages;
  customExtensionStageSettings [{stage, customExtension: {id}}]; 201), accesspackageassignmentpolicy-get
  (customExtensionStageSettings are returned only with $expand=customExtensionStageSettings($expand=customExtension),
  https://learn.microsoft.com/graph/api/resources/customextensionstagesetting), accesspackageassignmentpolicy-update
  (PUT replaces the policy; 200 with the policy), accesspackage-list-assignmentpolicies.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import em_callouts as callouts
from .auth import authorize
from .em_shapes import NESTED, iso_duration
from .errors import bad_request, json_object, not_found
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
    new_id,
    now,
    public,
    required,
    state_of,
)
from .graph_governance import catalog, catalog_resources, extension_json

CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#identityGovernance/entitlementManagement/"
PACKAGE_WRITABLE = {"displayName", "description", "isHidden", "catalog"}
PACKAGE_HIDDEN = {"catalogId", "assignmentPolicies", "resourceRoleScopes", "resourceGroupId"}
POLICY_WRITABLE = {
    "displayName",
    "description",
    "allowedTargetScope",
    "specificAllowedTargets",
    "expiration",
    "requestorSettings",
    "requestApprovalSettings",
    "reviewSettings",
    "automaticRequestSettings",
    "customExtensionStageSettings",
    "questions",
    "accessPackage",
}
TARGET_SCOPES = {
    "notSpecified",
    "specificDirectoryUsers",
    "specificConnectedOrganizationUsers",
    "specificDirectoryServicePrincipals",
    "allMemberUsers",
    "allDirectoryUsers",
    "allDirectoryServicePrincipals",
    "allConfiguredConnectedOrganizationUsers",
    "allExternalUsers",
}
EXPIRATION_TYPES = {"notSpecified", "noExpiration", "afterDateTime", "afterDuration"}
REQUEST_STAGES = {"assignmentRequestCreated", "assignmentRequestApproved", "assignmentRequestGranted"}
REQUEST_STAGES |= {"assignmentRequestRemoved"}
ASSIGNMENT_STAGES = {"assignmentFourteenDaysBeforeExpiration", "assignmentOneDayBeforeExpiration"}


def package(request: web.Request, package_id: str) -> dict[str, Any]:
    found = em_of(request).packages.get(package_id)
    if found is None:
        raise not_found(f"Access package '{package_id}' was not found.", code="ResourceNotFound")
    return found


def scope_json(item: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("role", "scope") or k in expand}


def package_json(request: web.Request, item: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
    out = public(item, PACKAGE_HIDDEN)
    if "catalog" in expand:
        out["catalog"] = public(catalog(request, item["catalogId"]))
    if "resourceRoleScopes" in expand:
        out["resourceRoleScopes"] = [scope_json(s, expand["resourceRoleScopes"]) for s in _scopes(item)]
    if "assignmentPolicies" in expand:
        out["assignmentPolicies"] = [policy_json(request, p, {}) for p in item.get("assignmentPolicies", [])]
    return out


def _scopes(item: dict[str, Any]) -> list[dict[str, Any]]:
    return item.setdefault("resourceRoleScopes", [])


PACKAGE_RELATIONS = {"catalog", "resourceRoleScopes", "assignmentPolicies"}
PACKAGE_TYPE = "microsoft.graph.accessPackage"
# Nested $expand these routes accept (em_shapes.parse_expand looks the next level up in NESTED).
NESTED.setdefault("customExtensionStageSettings", ({"customExtension"}, "microsoft.graph.customExtensionStageSetting"))
NESTED.setdefault("resourceRoleScopes", ({"role", "scope"}, "microsoft.graph.accessPackageResourceRoleScope"))


# --- access packages -----------------------------------------------------------------------------------------


async def list_packages(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    expand = expansions(request, PACKAGE_RELATIONS, PACKAGE_TYPE)
    items = [package_json(request, p, expand) for p in em_of(request).packages.values()]
    return collection(CONTEXT + "accessPackages", filtered(request, items))


async def create_package(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    body = await json_object(request, PACKAGE_WRITABLE)
    required(body, "displayName", "catalog.id")
    catalog_id = catalog(request, body["catalog"]["id"])["id"]
    stamp = now(request)
    created = {
        "id": new_id(),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "isHidden": bool(body.get("isHidden", False)),
        "createdDateTime": stamp,
        "modifiedDateTime": stamp,
        "catalogId": catalog_id,
        "assignmentPolicies": [],
        "resourceRoleScopes": [],
    }
    em_of(request).packages[created["id"]] = created
    return entity(CONTEXT + "accessPackages/$entity", package_json(request, created, {}), 201)


async def get_package(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    expand = expansions(request, PACKAGE_RELATIONS, PACKAGE_TYPE)
    found = package(request, request.match_info["id"])
    return entity(CONTEXT + "accessPackages/$entity", package_json(request, found, expand))


async def update_package(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    found = package(request, request.match_info["id"])
    body = await json_object(request, {"displayName", "description", "isHidden"})
    found.update(body, modifiedDateTime=now(request))
    return web.Response(status=204)


# --- resource role scopes ------------------------------------------------------------------------------------


async def list_role_scopes(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    found = package(request, request.match_info["id"])
    expand = expansions(request, {"role", "scope"}, "microsoft.graph.accessPackageResourceRoleScope")
    values = [scope_json(s, expand) for s in _scopes(found)]
    return collection(CONTEXT + f"accessPackages('{found['id']}')/resourceRoleScopes", values)


async def create_role_scope(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    found = package(request, request.match_info["id"])
    body = await json_object(request, {"role", "scope"})
    required(body, "role.originId", "role.originSystem", "scope.originId", "scope.originSystem")
    role_origin, scope_origin = body["role"]["originId"], body["scope"]["originId"]
    resources = catalog_resources(request, found["catalogId"]).values()
    resource = next((r for r in resources if any(x["originId"] == role_origin for x in r["roles"])), None)
    if resource is None:
        raise bad_request(f"The role '{role_origin}' belongs to no resource in the access package's catalog.")
    role = next(x for x in resource["roles"] if x["originId"] == role_origin)
    scope = next((s for s in resource["scopes"] if s["originId"] == scope_origin), None)
    if scope is None:
        raise bad_request(f"The scope '{scope_origin}' is not a scope of the resource '{resource['originId']}'.")
    scope_id = f"{role['id']}_{scope['id']}"
    if any(s["id"] == scope_id for s in _scopes(found)):
        raise bad_request("The access package already has this resource role scope.", code="RoleScopeAlreadyExists")
    resource_ref = {k: resource[k] for k in ("id", "displayName", "originId", "originSystem")}
    created = {
        "id": scope_id,
        "createdDateTime": now(request),
        "role": {**role, "resource": resource_ref},
        "scope": dict(scope),
    }
    _scopes(found).append(created)
    if role["displayName"] == "Member":
        found["resourceGroupId"] = resource["originId"]  # what the engine adds targets to on delivery
    return entity(CONTEXT + "accessPackageResourceRoleScope/$entity", created, 201)


# --- assignment policies -------------------------------------------------------------------------------------


def _policies(request: web.Request):
    for item in em_of(request).packages.values():
        for policy in item.get("assignmentPolicies", []):
            yield item, policy


def policy_of(request: web.Request, policy_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    found = next(((p, x) for p, x in _policies(request) if x["id"] == policy_id), None)
    if found is None:
        raise not_found(f"Assignment policy '{policy_id}' was not found.", code="ResourceNotFound")
    return found


def policy_json(request: web.Request, policy: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
    out = public(policy, {"customExtensionStageSettings"})
    if "customExtensionStageSettings" in expand:
        extensions = em_of(request).extensions
        settings = []
        for setting in policy.get("customExtensionStageSettings") or []:
            entry = {"id": setting.get("id"), "stage": setting["stage"]}
            if "customExtension" in expand["customExtensionStageSettings"]:
                extension = extensions.get(setting["customExtension"]["id"])
                entry["customExtension"] = extension_json(extension) if extension else None
            settings.append(entry)
        out["customExtensionStageSettings"] = settings
    if "accessPackage" in expand:
        owner = next(p for p, x in _policies(request) if x is policy)
        out["accessPackage"] = package_json(request, owner, {})
    return out


def _check_policy(request: web.Request, body: dict[str, Any], owner: dict[str, Any]) -> None:
    """400 for what the create/update pages rule out; the docs' enumerations and formats."""
    scope = body.get("allowedTargetScope", "notSpecified")
    if scope not in TARGET_SCOPES:
        raise bad_request(f"allowedTargetScope '{scope}' is not one of {', '.join(sorted(TARGET_SCOPES))}.")
    expiration = body.get("expiration") or {"type": "notSpecified"}
    if expiration.get("type") not in EXPIRATION_TYPES:
        raise bad_request(f"expiration.type must be one of {', '.join(sorted(EXPIRATION_TYPES))}.")
    if expiration["type"] == "afterDuration":
        _duration(expiration.get("duration"), "expiration.duration")
    approval = body.get("requestApprovalSettings") or {}
    stages = approval.get("stages") or []
    if approval.get("isApprovalRequiredForAdd") and not stages:
        raise bad_request("isApprovalRequiredForAdd needs at least one approval stage.")
    for number, stage in enumerate(stages, 1):
        if not stage.get("primaryApprovers") and not stage.get("fallbackPrimaryApprovers"):
            raise bad_request(f"Approval stage {number} has no approvers.")
        _duration(stage.get("durationBeforeAutomaticDenial") or "P14D", f"stage {number} durationBeforeAutomaticDenial")
        for approver in stage.get("primaryApprovers") or []:
            if str(approver.get("@odata.type", "")).endswith("groupMembers"):
                state_of(request).group(approver.get("groupId") or "")  # an unknown group is a 404
    extensions = em_of(request).extensions
    for setting in body.get("customExtensionStageSettings") or []:
        stage, ref = setting.get("stage"), (setting.get("customExtension") or {}).get("id")
        if stage not in REQUEST_STAGES | ASSIGNMENT_STAGES or not ref:
            raise bad_request("Each customExtensionStageSetting needs a valid stage and customExtension.id.")
        extension = extensions.get(ref)
        if extension is None or extension.get("catalogId") != owner["catalogId"]:
            raise not_found(f"Custom extension '{ref}' is not in the access package's catalog.", "ResourceNotFound")
        wanted = callouts.REQUEST_WORKFLOW if stage in REQUEST_STAGES else callouts.ASSIGNMENT_WORKFLOW
        if callouts.kind(extension) != wanted:
            raise bad_request(f"Stage {stage} needs a #{wanted}.")


def _duration(value: Any, name: str) -> None:
    try:
        iso_duration(value)
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 duration, not {value!r}.") from None


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    stored = {k: v for k, v in body.items() if k != "accessPackage"}
    stored["customExtensionStageSettings"] = [
        {"id": new_id(), "stage": s["stage"], "customExtension": {"id": s["customExtension"]["id"]}}
        for s in body.get("customExtensionStageSettings") or []
    ]
    return stored


async def list_policies(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    expand = expansions(request, {"accessPackage", "customExtensionStageSettings"}, "accessPackageAssignmentPolicy")
    package_id = request.match_info.get("id")
    if package_id:
        package(request, package_id)
    items = [policy_json(request, x, expand) for p, x in _policies(request) if not package_id or p["id"] == package_id]
    return collection(CONTEXT + "assignmentPolicies", filtered(request, items))


async def create_policy(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    body = await json_object(request, POLICY_WRITABLE)
    required(body, "accessPackage.id")
    owner = package(request, body["accessPackage"]["id"])
    _check_policy(request, body, owner)
    stamp = now(request)
    created = {"id": new_id(), **_stored(body), "createdDateTime": stamp, "modifiedDateTime": stamp}
    owner.setdefault("assignmentPolicies", []).append(created)
    return entity(CONTEXT + "assignmentPolicies/$entity", policy_json(request, created, {}), 201)


async def get_policy(request: web.Request) -> web.Response:
    authorize(request, EM_READ)
    expand = expansions(request, {"accessPackage", "customExtensionStageSettings"}, "accessPackageAssignmentPolicy")
    _, found = policy_of(request, request.match_info["id"])
    return entity(CONTEXT + "assignmentPolicies/$entity", policy_json(request, found, expand))


async def replace_policy(request: web.Request) -> web.Response:
    authorize(request, EM_WRITE)
    owner, found = policy_of(request, request.match_info["id"])
    body = await json_object(request, POLICY_WRITABLE | {"id"})
    _check_policy(request, body, owner)
    kept = {k: found[k] for k in ("id", "createdDateTime") if k in found}  # fixture policies may lack the stamp
    found.clear()
    found.update(kept, **_stored({k: v for k, v in body.items() if k != "id"}), modifiedDateTime=now(request))
    return entity(CONTEXT + "assignmentPolicies/$entity", policy_json(request, found, {}))


def setup(app: web.Application) -> None:
    r = app.router
    for version in VERSIONS:
        base = f"{version}{EM_BASE}"
        r.add_get(f"{base}/accessPackages", list_packages)
        r.add_post(f"{base}/accessPackages", create_package)
        r.add_get(f"{base}/accessPackages/{{id}}", get_package)
        r.add_patch(f"{base}/accessPackages/{{id}}", update_package)
        r.add_get(f"{base}/accessPackages/{{id}}/resourceRoleScopes", list_role_scopes)
        r.add_post(f"{base}/accessPackages/{{id}}/resourceRoleScopes", create_role_scope)
        r.add_get(f"{base}/accessPackages/{{id}}/assignmentPolicies", list_policies)
        r.add_get(f"{base}/assignmentPolicies", list_policies)
        r.add_post(f"{base}/assignmentPolicies", create_policy)
        r.add_get(f"{base}/assignmentPolicies/{{id}}", get_policy)
        r.add_put(f"{base}/assignmentPolicies/{{id}}", replace_policy)
