"""Sign-in policy routes of the local tenant: authentication strengths and Conditional Access policies.

Documentation followed (Graph v1.0):
- https://learn.microsoft.com/graph/api/resources/authenticationstrengthpolicy (built-in policies can be neither
  updated nor deleted; policyType builtIn|custom; requirementsSatisfied mfa);
  https://learn.microsoft.com/graph/api/authenticationstrengthroot-post-policies
  (POST /policies/authenticationStrengthPolicies with displayName and allowedCombinations; application:
  Policy.ReadWrite.ConditionalAccess, higher Policy.ReadWrite.AuthenticationMethod; 201);
  authenticationstrengthroot-list-policies (Policy.Read.All least);
  authenticationstrengthpolicy-update (PATCH displayName/description only, 200);
  authenticationstrengthpolicy-updateallowedcombinations (POST .../updateAllowedCombinations, 200).
  Method mode names: https://learn.microsoft.com/graph/api/resources/authenticationstrengths-overview
- https://learn.microsoft.com/graph/api/conditionalaccessroot-post-policies (POST /identity/conditionalAccess/policies;
  application: Policy.ReadWrite.ConditionalAccess and Policy.Read.All; 201), conditionalaccessroot-list-policies
  (Policy.Read.All), conditionalaccesspolicy-update (PATCH → 204); state enabled|disabled|
  enabledForReportingButNotEnforced (resources/conditionalaccesspolicy); grantControls.authenticationStrength {id}
  (resources/conditionalaccessgrantcontrols).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .auth import authorize
from .errors import bad_request, json_object, not_found
from .gov_common import VERSIONS, authorize_all, collection, entity, filtered, governance, new_id, now, required
from .gov_common import state_of as _state

STRENGTH_READ = (
    "Policy.Read.All",
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.ReadWrite.AuthenticationMethod",
)
STRENGTH_WRITE = ("Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod")
CA_READ = ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")
CA_WRITE = ("Policy.ReadWrite.ConditionalAccess",)
CA_STATES = {"enabled", "disabled", "enabledForReportingButNotEnforced"}
MODES = {
    "password",
    "voice",
    "hardwareOath",
    "softwareOath",
    "sms",
    "fido2",
    "windowsHelloForBusiness",
    "microsoftAuthenticatorPush",
    "deviceBasedPush",
    "temporaryAccessPassOneTime",
    "temporaryAccessPassMultiUse",
    "email",
    "x509CertificateSingleFactor",
    "x509CertificateMultiFactor",
    "federatedSingleFactor",
    "federatedMultiFactor",
    "qrCodePin",
}
BUILT_IN = {
    "00000000-0000-0000-0000-000000000002": "Multifactor authentication",
    "00000000-0000-0000-0000-000000000003": "Passwordless MFA",
    "00000000-0000-0000-0000-000000000004": "Phishing-resistant MFA",
}
STRENGTH_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#policies/authenticationStrengthPolicies"
CA_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies"


def strengths(request: web.Request) -> dict[str, dict[str, Any]]:
    found = governance(_state(request))["authStrengths"]
    for policy_id, name in BUILT_IN.items():
        found.setdefault(
            policy_id,
            {
                "id": policy_id,
                "displayName": name,
                "description": f"Built-in: {name}",
                "policyType": "builtIn",
                "requirementsSatisfied": "mfa",
                "allowedCombinations": ["fido2", "windowsHelloForBusiness", "x509CertificateMultiFactor"],
                "createdDateTime": "2022-01-01T00:00:00Z",
                "modifiedDateTime": "2022-01-01T00:00:00Z",
            },
        )
    return found


def _combinations(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise bad_request("allowedCombinations must be a non-empty list.", code="InvalidRequest")
    for combination in value:
        for mode in str(combination).split(","):
            if mode.strip() not in MODES:
                raise bad_request(f"'{mode.strip()}' is not an authentication method mode.", code="InvalidRequest")
    return [", ".join(m.strip() for m in str(c).split(",")) for c in value]


def _strength(request: web.Request) -> dict[str, Any]:
    found = strengths(request).get(request.match_info["id"])
    if found is None:
        raise not_found(f"Authentication strength '{request.match_info['id']}' was not found.")
    return found


def _custom(found: dict[str, Any]) -> None:
    if found["policyType"] == "builtIn":
        raise bad_request("Built-in authentication strengths cannot be changed.", code="InvalidRequest")


async def list_strengths(request: web.Request) -> web.Response:
    authorize(request, STRENGTH_READ)
    return collection(STRENGTH_CONTEXT, filtered(request, list(strengths(request).values())))


async def create_strength(request: web.Request) -> web.Response:
    authorize(request, STRENGTH_WRITE)
    body = await json_object(request, {"displayName", "description", "allowedCombinations"})
    required(body, "displayName", "allowedCombinations")
    if any(s["displayName"] == body["displayName"] for s in strengths(request).values()):
        raise bad_request("An authentication strength with this name exists.", code="InvalidRequest")
    stamp = now(request)
    created = {
        "id": new_id(),
        "displayName": body["displayName"],
        "description": body.get("description"),
        "policyType": "custom",
        "requirementsSatisfied": "mfa",
        "allowedCombinations": _combinations(body["allowedCombinations"]),
        "createdDateTime": stamp,
        "modifiedDateTime": stamp,
    }
    strengths(request)[created["id"]] = created
    return entity(STRENGTH_CONTEXT + "/$entity", created, 201)


async def get_strength(request: web.Request) -> web.Response:
    authorize(request, STRENGTH_READ)
    return entity(STRENGTH_CONTEXT + "/$entity", _strength(request))


async def update_strength(request: web.Request) -> web.Response:
    authorize(request, STRENGTH_WRITE)
    found = _strength(request)
    _custom(found)
    body = await json_object(request, {"displayName", "description"})
    found.update(body, modifiedDateTime=now(request))
    return entity(STRENGTH_CONTEXT + "/$entity", found)


async def update_combinations(request: web.Request) -> web.Response:
    authorize(request, STRENGTH_WRITE)
    found = _strength(request)
    _custom(found)
    body = await json_object(request, {"allowedCombinations"})
    previous = list(found["allowedCombinations"])
    found.update(allowedCombinations=_combinations(body.get("allowedCombinations")), modifiedDateTime=now(request))
    return web.json_response(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.updateAllowedCombinationsResult",
            "previousCombinations": previous,
            "currentCombinations": found["allowedCombinations"],
            "additionalInformation": None,
            "conditionalAccessReferences": [
                p["id"]
                for p in governance(_state(request))["conditionalAccess"].values()
                if ((p.get("grantControls") or {}).get("authenticationStrength") or {}).get("id") == found["id"]
            ],
        }
    )


# --- Conditional Access --------------------------------------------------------------------------------------


def _policies(request: web.Request) -> dict[str, dict[str, Any]]:
    return governance(_state(request))["conditionalAccess"]


def _check_ca(request: web.Request, body: dict[str, Any]) -> None:
    if body.get("state") not in CA_STATES:
        raise bad_request(f"state must be one of {', '.join(sorted(CA_STATES))}.", code="BadRequest")
    users = (body.get("conditions") or {}).get("users") or {}
    for group_id in [*users.get("includeGroups", []), *users.get("excludeGroups", [])]:
        _state(request).group(group_id)  # unknown groups: 404
    for user_id in [u for u in [*users.get("includeUsers", []), *users.get("excludeUsers", [])] if u != "All"]:
        if user_id not in ("None", "GuestsOrExternalUsers"):
            _state(request).user(user_id)
    grant = body.get("grantControls") or {}
    strength = (grant.get("authenticationStrength") or {}).get("id")
    if strength and strength not in strengths(request):
        raise not_found(f"Authentication strength '{strength}' was not found.")
    if grant and grant.get("operator") not in ("AND", "OR"):
        raise bad_request("grantControls.operator must be AND or OR.", code="BadRequest")


CA_WRITABLE = {"displayName", "state", "conditions", "grantControls", "sessionControls"}


async def list_ca(request: web.Request) -> web.Response:
    authorize(request, CA_READ)
    return collection(CA_CONTEXT, filtered(request, list(_policies(request).values())))


async def create_ca(request: web.Request) -> web.Response:
    authorize_all(request, CA_WRITE, ("Policy.Read.All",))
    body = await json_object(request, CA_WRITABLE)
    required(body, "displayName", "conditions.users", "conditions.applications")
    _check_ca(request, body)
    stamp = now(request)
    created = {"id": new_id(), "templateId": None, **body, "createdDateTime": stamp, "modifiedDateTime": stamp}
    _policies(request)[created["id"]] = created
    return entity(CA_CONTEXT + "/$entity", created, 201)


def _ca(request: web.Request) -> dict[str, Any]:
    found = _policies(request).get(request.match_info["id"])
    if found is None:
        raise not_found(f"Conditional Access policy '{request.match_info['id']}' was not found.")
    return found


async def get_ca(request: web.Request) -> web.Response:
    authorize(request, CA_READ)
    return entity(CA_CONTEXT + "/$entity", _ca(request))


async def update_ca(request: web.Request) -> web.Response:
    authorize_all(request, CA_WRITE, ("Policy.Read.All",))
    found = _ca(request)
    body = await json_object(request, CA_WRITABLE)
    _check_ca(request, {**found, **body})
    found.update(body, modifiedDateTime=now(request))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    for version in VERSIONS:
        base = f"{version}/policies/authenticationStrengthPolicies"
        r.add_get(base, list_strengths)
        r.add_post(base, create_strength)
        r.add_get(base + "/{id}", get_strength)
        r.add_patch(base + "/{id}", update_strength)
        r.add_post(base + "/{id}/updateAllowedCombinations", update_combinations)
        ca = f"{version}/identity/conditionalAccess/policies"
        r.add_get(ca, list_ca)
        r.add_post(ca, create_ca)
        r.add_get(ca + "/{id}", get_ca)
        r.add_patch(ca + "/{id}", update_ca)
