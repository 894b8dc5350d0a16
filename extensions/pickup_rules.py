"""Who may open a pickup and reveal its pass, and within which TAP policy: pure rules plus the Graph re-checks.

Identity comes only from App Service Authentication's principal headers, and only when EASY_AUTH_ENABLED says
Easy Auth fronts the app (it strips those headers from outside requests; without it anyone could send them).
The viewer must be the pickup's deliverer *and* still the target's manager in Graph now, or a member of
HELPDESK_GROUP_ID; never the target. The pickup must be open and unexpired, and the access-package
assignment still delivered.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graph.directory import Directory
from graph.entitlement import AssignmentRequest, Entitlement
from graph.errors import GraphCallError
from graph.tap import GRAPH_MAX_MINUTES, GRAPH_MIN_MINUTES, TapPolicy
from store.pickups import Pickup

from .settings import Settings

OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
DELIVERED_STATES = {"delivered", "partiallydelivered"}
ALL_USERS = "all_users"


@dataclass(frozen=True)
class Viewer:
    id: str
    name: str


@dataclass(frozen=True)
class Refusal:
    """Why the viewer gets no further: an HTTP status and a key of pickup_strings.REFUSALS / PROBLEMS."""

    status: int
    code: str
    values: dict[str, Any] = field(default_factory=dict)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.strip()
    return ""


def viewer_from_headers(headers: Mapping[str, str], easy_auth_enabled: bool) -> Viewer | None:
    """The signed-in user Easy Auth vouches for, or None (not trusted, not signed in, or inconsistent headers)."""
    if not easy_auth_enabled:
        return None
    user_id = _header(headers, "X-MS-CLIENT-PRINCIPAL-ID")
    if not user_id:
        return None
    name = _header(headers, "X-MS-CLIENT-PRINCIPAL-NAME")
    encoded = _header(headers, "X-MS-CLIENT-PRINCIPAL")
    if encoded:
        try:
            principal = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        except (binascii.Error, ValueError):
            return None
        claims = {str(c.get("typ")): str(c.get("val")) for c in principal.get("claims") or [] if isinstance(c, dict)}
        oid = claims.get(OID_CLAIM) or claims.get("oid")
        if oid and oid.lower() != user_id.lower():
            return None  # the headers disagree: trust none of them
        name = claims.get("name") or name
    return Viewer(id=user_id, name=name or user_id)


# --- pure rules ---------------------------------------------------------------------------------------------
def check_not_target(pickup: Pickup, viewer: Viewer) -> Refusal | None:
    if viewer.id.lower() == pickup.target_id.lower():
        return Refusal(403, "isTarget")
    return None


def check_deliverer(
    pickup: Pickup, viewer: Viewer, current_manager_id: str | None, in_helpdesk: bool
) -> Refusal | None:
    """The deliverer resolved at grant time, still the manager now; or a helpdesk member."""
    if in_helpdesk:
        return None
    me = viewer.id.lower()
    if me != pickup.deliverer_id.lower():
        return Refusal(403, "notDeliverer")
    if (current_manager_id or "").lower() != me:
        return Refusal(403, "managerChanged")
    return None


def check_open(pickup: Pickup, now: datetime, lifetime_hours: float) -> Refusal | None:
    """Closed or expired pickups are gone (410); a revealed one is answered by the caller (its own page)."""
    if pickup.state == "closed":
        return Refusal(410, "closed")
    if pickup.state == "expired" or (pickup.state == "open" and pickup.expires_at <= now):
        return Refusal(410, "expired", {"hours": f"{lifetime_hours:g}"})
    return None


def check_delivered(request: AssignmentRequest | None) -> Refusal | None:
    if request is None:
        return Refusal(410, "notDelivered", {"state": "not found"})
    if request.state.lower() not in DELIVERED_STATES:
        return Refusal(410, "notDelivered", {"state": request.state})
    # The request stays "delivered" after a later removal (its own request): look at the assignment too.
    assignment_state = str((request.raw.get("assignment") or {}).get("state") or "delivered")
    if assignment_state.lower() not in DELIVERED_STATES:
        return Refusal(410, "notDelivered", {"state": assignment_state})
    return None


@dataclass(frozen=True)
class PassPlan:
    lifetime_minutes: int
    usable_once: bool


def plan_pass(policy: TapPolicy, wanted_minutes: int) -> PassPlan | Refusal:
    """The lifetime we ask for, clamped into the policy (and Graph's 10–43,200); multi-use unless forced."""
    if not policy.enabled:
        return Refusal(409, "tapDisabled")
    low = max(policy.minimum_lifetime, GRAPH_MIN_MINUTES)
    high = min(policy.maximum_lifetime, GRAPH_MAX_MINUTES)
    if low > high:
        return Refusal(409, "lifetime", {"low": policy.minimum_lifetime, "high": policy.maximum_lifetime})
    return PassPlan(lifetime_minutes=min(max(wanted_minutes, low), high), usable_once=policy.usable_once)


def in_policy_targets(policy: TapPolicy, group_ids: set[str]) -> bool:
    """The policy's includeTargets hold all_users or one of the user's groups, and no exclusion matches."""
    groups = {g.lower() for g in group_ids}
    included = any(t.lower() == ALL_USERS or t.lower() in groups for t in policy.include_target_ids)
    excluded = any(t.lower() in groups for t in policy.exclude_target_ids)
    return included and not excluded


def targets_need_groups(policy: TapPolicy) -> bool:
    """Whether the target's groups must be read to decide (not when the policy simply covers all users)."""
    includes_all = any(t.lower() == ALL_USERS for t in policy.include_target_ids)
    return not includes_all or bool(policy.exclude_target_ids)


def classify_mint_error(exc: GraphCallError, policy: TapPolicy) -> Refusal:
    """A Graph refusal the manager can hand to an administrator, or a transient failure to retry."""
    message = exc.message.lower()
    if exc.transient or exc.status == 0:
        return Refusal(503, "mintFailed", {"code": exc.code})
    # Graph's documented refusal for both a disabled method and a user outside the targets is "Converged
    # UserCredentialPolicy does not allow creating or updating this authentication method": the policy we just
    # read tells which of the two it is.
    policy_refusal = "usercredentialpolicy" in message or "does not allow creating" in message
    if exc.status == 400 and ("disabled" in message or (policy_refusal and not policy.enabled)):
        return Refusal(409, "tapDisabled")
    if exc.status == 400 and (policy_refusal or "not enabled" in message or "target" in message):
        return Refusal(409, "notInTargets")
    if exc.status == 400 and "lifetime" in message:
        return Refusal(409, "lifetime", {"low": policy.minimum_lifetime, "high": policy.maximum_lifetime})
    return Refusal(409, "mintRefused", {"code": exc.code, "message": exc.message[:300]})


# --- the Graph re-checks --------------------------------------------------------------------------------------
async def check_viewer_now(pickup: Pickup, viewer: Viewer, directory: Directory, settings: Settings) -> Refusal | None:
    """Target and deliverer rules with the manager (and helpdesk membership) read from Graph now."""
    refusal = check_not_target(pickup, viewer)
    if refusal is not None:
        return refusal
    in_helpdesk = False
    if settings.helpdesk_group_id:
        memberships = await directory.memberships(viewer.id)
        in_helpdesk = settings.helpdesk_group_id.lower() in {g.lower() for g in memberships.group_ids}
    manager = None
    if not in_helpdesk:
        manager = await directory.manager(pickup.target_id)
    return check_deliverer(pickup, viewer, manager.id if manager else None, in_helpdesk)


async def check_assignment_now(pickup: Pickup, entitlement: Entitlement) -> Refusal | None:
    return check_delivered(await entitlement.request(pickup.request_id))
