"""Graph authentication-method routes: list/get/delete per type, phone create/update, Temporary Access Pass
create, the TAP method policy, beta signInPreferences, and a control route to simulate a registration.

Documentation followed (each rule is enforced and tested):
- https://learn.microsoft.com/graph/api/authentication-list-methods (list, password included)
- https://learn.microsoft.com/graph/api/authentication-post-phonemethods : phoneNumber "+{country code}
  {number}x{extension}", phoneType mobile | alternateMobile | office, one of each, alternateMobile needs mobile
- https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete : the default MFA method cannot be
  deleted while others remain (400 badRequest "Cannot delete default method with other methods configured.
  Please change default method before deletion." as Graph answers)
- https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods and
  https://learn.microsoft.com/graph/api/resources/temporaryaccesspassauthenticationmethod : lifetime 10–43,200
  minutes and inside the policy, isUsableOnce forced by the policy, one pass per user (a new one replaces
  it), the pass only in the create response
- https://learn.microsoft.com/graph/api/resources/temporaryaccesspassauthenticationmethodconfiguration
- Least-privilege per-method permissions (UserAuthMethod-<Type>.Read[Write].All) next to
  UserAuthenticationMethod.Read[Write].All: https://learn.microsoft.com/graph/permissions-reference
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .auth import authorize
from .errors import GraphError, bad_request, json_object, not_found
from .graph_directory import transitive_containers
from .state import TenantState

VERSIONS = ("/v1.0", "/beta")
GRAPH = "https://graph.microsoft.com/v1.0"
MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
ALT_MOBILE_ID = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE_ID = "e37fc753-ff3b-4958-9484-eaa9425c82bc"
PHONE_IDS = {"mobile": MOBILE_ID, "alternateMobile": ALT_MOBILE_ID, "office": OFFICE_ID}
PHONE_NUMBER = re.compile(r"^\+\d{1,3} \d{4,15}(x\d{1,10})?$")
DEFAULT_ERROR = (
    "Cannot delete default method with other methods configured. Please change default method before deletion."
)

# collection segment → (@odata.type, granular permission suffix, versions that have it)
TYPES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "phoneMethods": ("#microsoft.graph.phoneAuthenticationMethod", "Phone", VERSIONS),
    "emailMethods": ("#microsoft.graph.emailAuthenticationMethod", "Email", VERSIONS),
    "fido2Methods": ("#microsoft.graph.fido2AuthenticationMethod", "Passkey", VERSIONS),
    "microsoftAuthenticatorMethods": (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "MicrosoftAuthApp",
        VERSIONS,
    ),
    "softwareOathMethods": ("#microsoft.graph.softwareOathAuthenticationMethod", "SoftwareOATH", VERSIONS),
    "windowsHelloForBusinessMethods": (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "WindowsHello",
        VERSIONS,
    ),
    "temporaryAccessPassMethods": ("#microsoft.graph.temporaryAccessPassAuthenticationMethod", "TAP", VERSIONS),
    "platformCredentialMethods": ("#microsoft.graph.platformCredentialAuthenticationMethod", "PlatformCred", VERSIONS),
    "passwordMethods": ("#microsoft.graph.passwordAuthenticationMethod", "Password", VERSIONS),
    "hardwareOathMethods": ("#microsoft.graph.hardwareOathAuthenticationMethod", "HardwareOATH", ("/beta",)),
}
_BY_ODATA = {odata: segment for segment, (odata, _, _) in TYPES.items()}
V1_TYPES = {odata for odata, _, versions in TYPES.values() if "/v1.0" in versions}


def permissions(segment: str, write: bool) -> tuple[str, ...]:
    granular = TYPES[segment][1]
    if write:
        return (f"UserAuthMethod-{granular}.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All")
    return (
        f"UserAuthMethod-{granular}.Read.All",
        f"UserAuthMethod-{granular}.ReadWrite.All",
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    )


def _state(request: web.Request) -> TenantState:
    return request.app[STATE]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(request: web.Request) -> str:
    return "/beta" if request.path.startswith("/beta/") else "/v1.0"


def visible(method: dict[str, Any], version: str, state: TenantState) -> dict[str, Any]:
    """A method as Graph shows it: the pass never (it is only in the create response), TAP usability live."""
    out = dict(method)
    if out.get("@odata.type") == TYPES["temporaryAccessPassMethods"][0]:
        out["temporaryAccessPass"] = None
        out.update(_usability(out, state))
    return out


def _usability(tap: dict[str, Any], state: TenantState) -> dict[str, Any]:
    if tap.get("methodUsabilityReason") == "OneTimeUsed":
        return {"isUsable": False, "methodUsabilityReason": "OneTimeUsed"}
    start = datetime.fromisoformat(tap["startDateTime"].replace("Z", "+00:00"))
    end = start + timedelta(minutes=tap["lifetimeInMinutes"])
    now = state.now()
    if now < start:
        return {"isUsable": False, "methodUsabilityReason": "NotYetValid"}
    if now >= end:
        return {"isUsable": False, "methodUsabilityReason": "Expired"}
    return {"isUsable": True, "methodUsabilityReason": "EnabledByPolicy"}


def _methods(request: web.Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    user = _state(request).user(request.match_info["id"])
    return user, user["methods"]


async def list_all(request: web.Request) -> web.Response:
    authorize(request, ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"))
    _, methods = _methods(request)
    version = _version(request)
    items = [
        visible(m, version, _state(request)) for m in methods if version == "/beta" or m["@odata.type"] in V1_TYPES
    ]
    return web.json_response(
        {
            "@odata.context": f"{GRAPH}/$metadata#users('{request.match_info['id']}')/authentication/methods",
            "value": items,
        }
    )


async def get_any(request: web.Request) -> web.Response:
    authorize(request, ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"))
    _, methods = _methods(request)
    method = next((m for m in methods if m["id"] == request.match_info["method"]), None)
    if method is None or (_version(request) == "/v1.0" and method["@odata.type"] not in V1_TYPES):
        raise not_found("The requested authentication method was not found.", code="itemNotFound")
    return web.json_response(visible(method, _version(request), _state(request)))


def typed(segment: str):
    odata = TYPES[segment][0]

    async def list_of_type(request: web.Request) -> web.Response:
        authorize(request, permissions(segment, write=False))
        _, methods = _methods(request)
        items = [visible(m, _version(request), _state(request)) for m in methods if m["@odata.type"] == odata]
        return web.json_response({"value": items})

    async def get_one(request: web.Request) -> web.Response:
        authorize(request, permissions(segment, write=False))
        return web.json_response(visible(_find(request, odata), _version(request), _state(request)))

    async def delete_one(request: web.Request) -> web.Response:
        authorize(request, permissions(segment, write=True))
        user, methods = _methods(request)
        method = _find(request, odata)
        if segment == "passwordMethods":
            raise bad_request("The password authentication method cannot be deleted.", code="badRequest")
        others = [m for m in methods if m is not method and m["@odata.type"] != TYPES["passwordMethods"][0]]
        if method["id"] == user.get("defaultMethodId") and others:
            raise GraphError(400, "badRequest", DEFAULT_ERROR)
        if method.get("phoneType") == "mobile" and any(m.get("phoneType") == "alternateMobile" for m in others):
            raise bad_request(
                "The mobile phone cannot be removed while an alternate mobile phone exists.", code="badRequest"
            )
        methods.remove(method)
        if method["id"] == user.get("defaultMethodId"):
            user["defaultMethodId"] = None
        return web.Response(status=204)

    return list_of_type, get_one, delete_one


def _find(request: web.Request, odata: str) -> dict[str, Any]:
    _, methods = _methods(request)
    method = next((m for m in methods if m["id"] == request.match_info["method"] and m["@odata.type"] == odata), None)
    if method is None:
        raise not_found("The requested authentication method was not found.", code="itemNotFound")
    return method


def _check_phone(number: Any) -> str:
    if not isinstance(number, str) or not PHONE_NUMBER.match(number):
        raise bad_request(
            f"Invalid phone number '{number}'. "
            "Phone numbers must use the format +{country code} {number}x{extension}.",
            code="badRequest",
        )
    return number


async def create_phone(request: web.Request) -> web.Response:
    authorize(request, permissions("phoneMethods", write=True))
    user, methods = _methods(request)
    body = await json_object(request, {"phoneNumber", "phoneType"})
    number = _check_phone(body.get("phoneNumber"))
    kind = body.get("phoneType")
    if kind not in PHONE_IDS:
        raise bad_request("phoneType must be one of mobile, alternateMobile, office.", code="badRequest")
    phones = {m.get("phoneType") for m in methods if m["@odata.type"] == TYPES["phoneMethods"][0]}
    if kind in phones:
        raise bad_request(f"A phone method of type {kind} already exists for this user.", code="badRequest")
    if kind == "alternateMobile" and "mobile" not in phones:
        raise bad_request("An alternate mobile phone requires a mobile phone.", code="badRequest")
    method = {
        "@odata.type": TYPES["phoneMethods"][0],
        "id": PHONE_IDS[kind],
        "phoneNumber": number,
        "phoneType": kind,
        "smsSignInState": "notAllowedByPolicy",
    }
    methods.append(method)
    if user.get("defaultMethodId") is None:
        user["defaultMethodId"] = method["id"]
    return web.json_response(method, status=201)


async def update_phone(request: web.Request) -> web.Response:
    authorize(request, permissions("phoneMethods", write=True))
    method = _find(request, TYPES["phoneMethods"][0])
    body = await json_object(request, {"phoneNumber", "phoneType"})
    if "phoneType" in body and body["phoneType"] != method["phoneType"]:
        raise bad_request("phoneType cannot be changed.", code="badRequest")
    if "phoneNumber" in body:
        method["phoneNumber"] = _check_phone(body["phoneNumber"])
    return web.json_response(method)


def tap_policy(state: TenantState) -> dict[str, Any]:
    return state.policies["temporaryAccessPass"]


def _in_targets(state: TenantState, user_id: str, targets: list[dict[str, Any]]) -> bool:
    groups = set(transitive_containers(state, user_id))
    return any(t.get("id") == "all_users" or t.get("id") in groups for t in targets)


async def create_tap(request: web.Request) -> web.Response:
    authorize(request, permissions("temporaryAccessPassMethods", write=True))
    state = _state(request)
    user, methods = _methods(request)
    body = await json_object(request, {"startDateTime", "lifetimeInMinutes", "isUsableOnce"})
    policy = tap_policy(state)
    if policy.get("state") != "enabled":
        # Undocumented exact error; Graph refuses to create a pass while the method is disabled.
        raise bad_request("Temporary Access Pass is disabled by the authentication methods policy.", code="badRequest")
    if not _in_targets(state, user["id"], policy.get("includeTargets", [])) or _in_targets(
        state, user["id"], [t for t in policy.get("excludeTargets", []) if t.get("id") != "all_users"]
    ):
        raise bad_request("The user is not enabled for Temporary Access Pass by policy.", code="badRequest")
    lifetime = body.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 10 <= lifetime <= 43200:
        raise bad_request("lifetimeInMinutes must be an integer between 10 and 43200.", code="badRequest")
    low, high = policy["minimumLifetimeInMinutes"], policy["maximumLifetimeInMinutes"]
    if not low <= lifetime <= high:
        raise bad_request(
            f"The lifetime {lifetime} is outside the policy's range of {low} to {high} minutes.", code="badRequest"
        )
    once = body.get("isUsableOnce", policy.get("isUsableOnce", False))
    if not isinstance(once, bool):
        raise bad_request("isUsableOnce must be a boolean.", code="badRequest")
    if policy.get("isUsableOnce"):
        once = True  # the policy forces one-time passes
    now = state.now()
    start = now
    if "startDateTime" in body:
        try:
            start = datetime.fromisoformat(str(body["startDateTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise bad_request("startDateTime is not a valid date and time.", code="badRequest") from None
    alphabet = string.ascii_letters + string.digits + "!@#$%&*+="
    secret = "".join(secrets.choice(alphabet) for _ in range(int(policy.get("defaultLength", 8))))
    method = {
        "@odata.type": TYPES["temporaryAccessPassMethods"][0],
        "id": str(uuid.uuid4()),
        "temporaryAccessPass": None,
        "createdDateTime": _stamp(now),
        "startDateTime": _stamp(start),
        "lifetimeInMinutes": lifetime,
        "isUsableOnce": once,
    }
    # One pass per user: a new one replaces whatever pass the user had.
    methods[:] = [m for m in methods if m["@odata.type"] != method["@odata.type"]]
    methods.append(method)
    state.extras.setdefault("taps_issued", []).append({"userId": user["id"], "methodId": method["id"]})
    response = {**method, **_usability(method, state), "temporaryAccessPass": secret}
    response["@odata.context"] = (
        f"{GRAPH}/$metadata#users('{user['id']}')/authentication/temporaryAccessPassMethods/$entity"
    )
    return web.json_response(response, status=201)


POLICY_READ = ("Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All")


async def get_policy(request: web.Request) -> web.Response:
    authorize(request, POLICY_READ)
    if request.match_info["config"].lower() != "temporaryaccesspass":
        raise not_found("Only the TemporaryAccessPass configuration is emulated.")
    return web.json_response(tap_policy(_state(request)))


async def patch_policy(request: web.Request) -> web.Response:
    authorize(request, ("Policy.ReadWrite.AuthenticationMethod",))
    policy = tap_policy(_state(request))
    body = await json_object(request, set(policy) - {"id"})
    merged = {**policy, **body}
    if not 10 <= merged["minimumLifetimeInMinutes"] <= merged["maximumLifetimeInMinutes"] <= 43200:
        raise bad_request("Lifetimes must satisfy 10 ≤ minimum ≤ maximum ≤ 43200.", code="badRequest")
    if (
        not merged["minimumLifetimeInMinutes"]
        <= merged["defaultLifetimeInMinutes"]
        <= merged["maximumLifetimeInMinutes"]
    ):
        raise bad_request("defaultLifetimeInMinutes must lie between minimum and maximum.", code="badRequest")
    if not 8 <= merged["defaultLength"] <= 48:
        raise bad_request("defaultLength must be between 8 and 48.", code="badRequest")
    policy.update(body)
    return web.Response(status=204)


_PREFERRED = {
    "mobile": "sms",
    "microsoftAuthenticator": "push",
    "softwareOath": "oath",
    "office": "voiceOffice",
    "alternateMobile": "voiceAlternateMobile",
}


async def sign_in_preferences(request: web.Request) -> web.Response:
    """Beta only: https://learn.microsoft.com/graph/api/authentication-get-signinpreferences?view=graph-rest-beta"""
    authorize(request, ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"))
    user, methods = _methods(request)
    default = next((m for m in methods if m["id"] == user.get("defaultMethodId")), None)
    preferred = None
    if default is not None:
        kind = default["@odata.type"].removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
        preferred = _PREFERRED.get(default.get("phoneType") if kind == "phone" else kind)
    return web.json_response(
        {
            "isSystemPreferredAuthenticationMethodEnabled": False,
            "userPreferredMethodForSecondaryAuthentication": preferred,
            "systemPreferredAuthenticationMethod": None,
        }
    )


async def control_register(request: web.Request) -> web.Response:
    """POST /_control/users/{id}/methods {Graph-shaped method}: simulate the user registering a method now."""
    state = _state(request)
    user = state.user(request.match_info["id"])
    method = await request.json()
    if method.get("@odata.type") not in _BY_ODATA:
        raise bad_request("@odata.type must name an authentication method type.")
    method.setdefault("id", str(uuid.uuid4()))
    method.setdefault("createdDateTime", _stamp(state.now()))
    user["methods"].append(method)
    if user.get("defaultMethodId") is None and method["@odata.type"] != TYPES["passwordMethods"][0]:
        user["defaultMethodId"] = method["id"]
    return web.json_response(method, status=201)


def setup(app: web.Application) -> None:
    base = "/users/{id}/authentication"
    for version in VERSIONS:
        app.router.add_get(f"{version}{base}/methods", list_all)
        app.router.add_get(f"{version}{base}/methods/{{method}}", get_any)
        app.router.add_post(f"{version}{base}/phoneMethods", create_phone)
        app.router.add_patch(f"{version}{base}/phoneMethods/{{method}}", update_phone)
        app.router.add_post(f"{version}{base}/temporaryAccessPassMethods", create_tap)
        policy = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{config}"
        app.router.add_get(version + policy, get_policy)
        app.router.add_patch(version + policy, patch_policy)
        for segment, (_, _, versions) in TYPES.items():
            if version not in versions:
                continue
            list_of_type, get_one, delete_one = typed(segment)
            app.router.add_get(f"{version}{base}/{segment}", list_of_type)
            app.router.add_get(f"{version}{base}/{segment}/{{method}}", get_one)
            app.router.add_delete(f"{version}{base}/{segment}/{{method}}", delete_one)
    app.router.add_get(f"/beta{base}/signInPreferences", sign_in_preferences)
    app.router.add_post("/_control/users/{id}/methods", control_register)
