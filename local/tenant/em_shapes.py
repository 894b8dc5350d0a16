"""Graph JSON shapes of EM objects and the OData options EM's list/get calls accept ($expand, $select, $filter).

Documentation followed:
- accessPackageAssignmentRequest (properties; accessPackage, assignment, requestor expandable):
  https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequest
- accessPackageAssignment (target, accessPackage, assignmentPolicy expandable; state values):
  https://learn.microsoft.com/graph/api/resources/accesspackageassignment
- accessPackageSubject: https://learn.microsoft.com/graph/api/resources/accesspackagesubject
- customExtensionCalloutInstance: https://learn.microsoft.com/graph/api/resources/customextensioncalloutinstance
- $expand with nested $expand ("assignment($expand=target)"): https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-get
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from .errors import bad_request
from .odata import parse_filter
from .state import TenantState

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_SUBJECT_NS = uuid.UUID("5d1e3c52-7a43-4b8e-9a55-e3c0f1a2b3c4")

REQUEST_TYPE = "microsoft.graph.accessPackageAssignmentRequest"
ASSIGNMENT_TYPE = "microsoft.graph.accessPackageAssignment"
REQUEST_FIELDS = {
    "id",
    "requestType",
    "state",
    "status",
    "createdDateTime",
    "completedDateTime",
    "justification",
    "answers",
    "schedule",
    "customExtensionCalloutInstances",
}
REQUEST_RELATIONS = {"accessPackage", "assignment", "requestor"}
ASSIGNMENT_FIELDS = {"id", "state", "status", "expiredDateTime", "schedule", "customExtensionCalloutInstances"}
ASSIGNMENT_RELATIONS = {"accessPackage", "assignmentPolicy", "target"}


def iso_duration(value: str | None) -> timedelta:
    match = _DURATION.match(value or "")
    if not match or not value or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    days, hours, minutes, seconds = (int(x or 0) for x in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def subject(state: TenantState, object_id: str) -> dict[str, Any]:
    """The accessPackageSubject EM keeps for a user (or a service principal that requested as admin).

    A subject has its own id, distinct from the directory object id; ours is derived from the object id so it
    stays stable across calls.
    """
    kind, found = "user", state.users.get(object_id)
    if found is None:
        app = next((a for a in state.applications.values() if a.get("servicePrincipalId") == object_id), {})
        kind, found = "servicePrincipal", {"displayName": app.get("displayName")}
    return {
        "id": str(uuid.uuid5(_SUBJECT_NS, object_id)),
        "objectId": object_id,
        "displayName": found.get("displayName"),
        "email": found.get("mail"),
        "principalName": found.get("userPrincipalName"),
        "onPremisesSecurityIdentifier": found.get("onPremisesSecurityIdentifier"),
        "subjectType": kind,
    }


def parse_expand(text: str | None, allowed: set[str], type_name: str) -> dict[str, dict]:
    """'a,b($expand=c)' → {'a': {}, 'b': {'c': {}}} with canonical names; 400 for a property the type lacks.

    Nested names are checked by the caller's next level (see NESTED)."""
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
    canonical = {name.lower(): name for name in allowed}
    for part in (p.strip() for p in parts if p.strip()):
        match = re.match(r"^([A-Za-z]+)(?:\((.*)\))?$", part)
        if not match:
            raise bad_request(f"Invalid $expand clause: '{part}'.")
        name = canonical.get(match.group(1).lower())
        if name is None:
            raise bad_request(f"Could not find a property named '{match.group(1)}' on type '{type_name}'.")
        nested: dict[str, dict] = {}
        for option in (match.group(2) or "").split(";"):
            if option.strip().lower().startswith("$expand="):
                inner_allowed, inner_type = NESTED.get(name, (set(), "microsoft.graph.entity"))
                nested = parse_expand(option.split("=", 1)[1], inner_allowed, inner_type)
        result[name] = nested
    return result


NESTED: dict[str, tuple[set[str], str]] = {
    "assignment": (ASSIGNMENT_RELATIONS, ASSIGNMENT_TYPE),
    "requestor": ({"connectedOrganization"}, "microsoft.graph.accessPackageSubject"),
    "target": ({"connectedOrganization"}, "microsoft.graph.accessPackageSubject"),
}


def select(item: dict[str, Any], text: str | None, fields: set[str], relations: set[str], type_name: str) -> dict:
    """$select: the named properties plus id and whatever was expanded; 400 for an unknown name."""
    if not text:
        return item
    canonical = {name.lower(): name for name in fields | relations}
    keep = {"id"}
    for raw in (n.strip() for n in text.split(",") if n.strip()):
        name = canonical.get(raw.lower())
        if name is None:
            raise bad_request(f"Could not find a property named '{raw}' on type '{type_name}'.")
        keep.add(name)
    return {k: v for k, v in item.items() if k in keep or k.startswith("@") or (k in relations and isinstance(v, dict))}


class _AnyCase(dict):
    """A dict whose get() ignores case, so `target/objectid` matches objectId as Graph's filters do."""

    def get(self, key, default=None):  # type: ignore[override]
        lowered = {k.lower(): v for k, v in self.items()}
        return lowered.get(str(key).lower(), default)


def _any_case(value: Any) -> Any:
    if isinstance(value, dict):
        return _AnyCase({k: _any_case(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_any_case(v) for v in value]
    return value


def matcher(text: str | None):
    """A predicate over a filter view, or None. Property names and string values compare case-insensitively."""
    predicate, _ = parse_filter(text)
    if predicate is None:
        return None
    return lambda view: predicate(_any_case(view))


def instance_json(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.customExtensionCalloutInstance",
        **{k: instance.get(k) for k in ("id", "customExtensionId", "detail", "externalCorrelationId", "status")},
    }


def package_json(package: dict[str, Any]) -> dict[str, Any]:
    out = {k: package.get(k) for k in ("id", "displayName", "description", "isHidden")}
    out["createdDateTime"] = package.get("createdDateTime", "2025-03-01T09:00:00Z")
    out["modifiedDateTime"] = package.get("modifiedDateTime", "2025-03-01T09:00:00Z")
    return out


def policy_json(policy: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "displayName", "description", "allowedTargetScope", "expiration", "requestorSettings")
    return {k: policy.get(k) for k in keys} | {"requestApprovalSettings": policy.get("requestApprovalSettings")}
