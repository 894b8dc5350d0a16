"""Helpers shared by the local tenant's configuration routes (EM catalogs/packages/policies, policies, apps).

Each caller names its own documentation page; this module only holds what they have in common: the
all-of permission check, $filter/$expand handling over plain dicts, and ids/timestamps.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .auth import authorize
from .em_engine import Engine, engine
from .em_shapes import matcher, parse_expand, stamp
from .errors import bad_request
from .state import TenantState

VERSIONS = ("/v1.0", "/beta")
EM_BASE = "/identityGovernance/entitlementManagement"
# Entitlement Management configuration: every create/list page in the EM API lists, application row,
# EntitlementManagement.Read.All for reads and EntitlementManagement.ReadWrite.All for writes.
EM_READ = ("EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All")
EM_WRITE = ("EntitlementManagement.ReadWrite.All",)


def state_of(request: web.Request) -> TenantState:
    return request.app[STATE]


def em_of(request: web.Request) -> Engine:
    return engine(request.app[STATE])


def governance(state: TenantState) -> dict[str, Any]:
    """Bookkeeping the EM engine does not hold: catalog resources, role assignments, policies."""
    return state.extras.setdefault(
        "governance",
        {
            "resources": {},  # catalog id -> {resource id -> accessPackageResource}
            # id -> unifiedRoleAssignment (entitlementManagement provider); the fixture may hold some already.
            "roleAssignments": {a["id"]: dict(a) for a in state.entitlement.get("roleAssignments", [])},
            "authStrengths": {},  # id -> authenticationStrengthPolicy
            "conditionalAccess": {},  # id -> conditionalAccessPolicy
        },
    )


def authorize_all(request: web.Request, *alternatives: tuple[str, ...]) -> dict[str, Any]:
    """Pages that say "X and Y": the caller needs one permission out of every group."""
    claims: dict[str, Any] = {}
    for group in alternatives:
        claims = authorize(request, group)
    return claims


def new_id() -> str:
    return str(uuid.uuid4())


def now(request: web.Request) -> str:
    return stamp(state_of(request).now())


def public(item: dict[str, Any], hidden: set[str] | None = None) -> dict[str, Any]:
    """The Graph JSON of a stored object: bookkeeping keys (leading underscore, or `hidden`) left out."""
    hidden = hidden or set()
    return {k: v for k, v in item.items() if not k.startswith("_") and k not in hidden}


def filtered(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply $filter (property names and strings case-insensitive, as Graph compares them)."""
    test = matcher(request.query.get("$filter"))
    return [i for i in items if test is None or test(i)]


def expansions(request: web.Request, allowed: set[str], type_name: str) -> dict[str, dict]:
    return parse_expand(request.query.get("$expand"), allowed, type_name)


def required(body: dict[str, Any], *names: str) -> None:
    """400 naming the first missing required property (a dotted path for nested ones)."""
    for name in names:
        value: Any = body
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value in (None, "", [], {}):
            raise bad_request(f"The property '{name}' is required.", code="InvalidRequest")


def collection(context: str, values: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"@odata.context": context, "value": values})


def entity(context: str, value: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response({"@odata.context": context, **value}, status=status)
