"""Graph authentication-method routes: list/get/delete per type, phone create/update, email create, Temporary Access
Pass create, the TAP method configuration, beta signInPreferences, and a control route to simulate a registration.

Documentation followed (the rules themselves, with their sources, are in method_rules.py):
- List/get all methods: https://learn.microsoft.com/graph/api/authentication-list-methods and
  https://learn.microsoft.com/graph/api/authenticationmethod-get (password included; hardwareOath only in beta)
- Per type list/get/delete, e.g. https://learn.microsoft.com/graph/api/authentication-list-phonemethods,
  https://learn.microsoft.com/graph/api/phoneauthenticationmethod-get,
  https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete (204), fido2authenticationmethod-delete,
  microsoftauthenticatorauthenticationmethod-delete, softwareoathauthenticationmethod-delete,
  windowshelloforbusinessauthenticationmethod-delete, emailauthenticationmethod-delete,
  temporaryaccesspassauthenticationmethod-delete, platformcredentialauthenticationmethod-delete,
  authentication-list-passwordmethods / passwordauthenticationmethod-get (no delete), and beta
  authentication-list-hardwareoathmethods / authentication-delete-hardwareoathmethods
- Phone create: https://learn.microsoft.com/graph/api/authentication-post-phonemethods (201 with the method);
  update: https://learn.microsoft.com/graph/api/phoneauthenticationmethod-update (PATCH → 204)
- Email create: https://learn.microsoft.com/graph/api/authentication-post-emailmethods (201)
- TAP create: https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods (201)
- TAP configuration: https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
  and -update (PATCH → 204)
- signInPreferences (beta): https://learn.microsoft.com/graph/api/authentication-get?view=graph-rest-beta and
  https://learn.microsoft.com/graph/api/authentication-update?view=graph-rest-beta (PATCH → 204)
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from . import method_rules as rules
from .appkeys import STATE
from .auth import authorize
from .errors import bad_request, not_found
from .graph_directory import transitive_containers
from .state import TenantState

BASE = "/users/{id}/authentication"
POLICY_READ = ("Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod")
POLICY_WRITE = ("Policy.ReadWrite.AuthenticationMethod",)
# signInPreferences: read with UserAuthenticationMethod.Read.All (+ReadWrite.All); the update page lists
# UserAuthenticationMethod.ReadWrite (sic, for applications) and UserAuthenticationMethod.ReadWrite.All.
PREFERENCES_WRITE = ("UserAuthenticationMethod.ReadWrite", "UserAuthenticationMethod.ReadWrite.All")
SIGN_IN_PREFERENCES = "#microsoft.graph.signInPreferences"


# --- Helpers --------------------------------------------------------------------------------------------


def _state(request: web.Request) -> TenantState:
    return request.app[STATE]


def _version(request: web.Request) -> str:
    return rules.BETA if request.path.startswith("/beta/") else rules.V1


def _context(request: web.Request, tail: str) -> str:
    """@odata.context as Graph writes it for this version: https://graph.microsoft.com/{v}/$metadata#{tail}"""
    return f"https://graph.microsoft.com{_version(request)}/$metadata#{tail}"


def _user(request: web.Request) -> dict[str, Any]:
    return _state(request).user(request.match_info["id"])


def _bookkeeping(state: TenantState) -> dict[str, dict[str, Any]]:
    """This module's per-user state that is not part of Graph's user JSON (sign-in preference details)."""
    return state.extras.setdefault("graph_methods", {"preferred": {}, "systemPreferred": {}})


def tap_policy(state: TenantState) -> dict[str, Any]:
    return state.policies["temporaryAccessPass"]


def visible(method: dict[str, Any], state: TenantState) -> dict[str, Any]:
    """A method as GET/list show it: a TAP's pass is always null there, its usability computed now."""
    out = dict(method)
    if out.get("@odata.type") == rules.TAP:
        out["temporaryAccessPass"] = None
        out.update(rules.tap_usability(out, tap_policy(state), state.now()))
    return out


def _listed(request: web.Request, method: dict[str, Any]) -> bool:
    return _version(request) == rules.BETA or method["@odata.type"] in rules.V1_TYPES


def _missing_method() -> Exception:
    return not_found("The requested authentication method was not found.", code="itemNotFound")


def _find(request: web.Request, odata: str | None = None) -> dict[str, Any]:
    wanted = request.match_info["method"]
    for method in _user(request)["methods"]:
        if method["id"] == wanted and (odata is None or method["@odata.type"] == odata) and _listed(request, method):
            return method
    raise _missing_method()


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("Unable to read JSON request payload.", "BadRequest") from None


def _set_default_if_none(user: dict[str, Any], method: dict[str, Any]) -> None:
    # The first second factor a user registers becomes the default MFA method.
    if user.get("defaultMethodId") is None and method["@odata.type"] not in rules.NOT_DEFAULT_CAPABLE:
        user["defaultMethodId"] = method["id"]


# --- All methods ----------------------------------------------------------------------------------------


async def list_all(request: web.Request) -> web.Response:
    """GET /users/{id}/authentication/methods (no query options are supported; we ignore any)."""
    authorize(request, rules.ALL_READ)
    user = _user(request)
    state = _state(request)
    items = [visible(m, state) for m in user["methods"] if _listed(request, m)]
    context = _context(request, f"users('{request.match_info['id']}')/authentication/methods")
    return web.json_response({"@odata.context": context, "value": items})


async def get_any(request: web.Request) -> web.Response:
    authorize(request, rules.ALL_READ)
    method = _find(request)
    body = {"@odata.context": _context(request, f"users('{request.match_info['id']}')/authentication/methods/$entity")}
    return web.json_response({**body, **visible(method, _state(request))})


# --- Per type -------------------------------------------------------------------------------------------


def typed(segment: str):
    """List, get and delete handlers for one method collection (phoneMethods, fido2Methods, ...)."""
    odata = rules.ODATA[segment]

    async def list_of_type(request: web.Request) -> web.Response:
        authorize(request, rules.permissions(segment, write=False))
        state = _state(request)
        items = [visible(m, state) for m in _user(request)["methods"] if m["@odata.type"] == odata]
        context = _context(request, f"users('{request.match_info['id']}')/authentication/{segment}")
        return web.json_response({"@odata.context": context, "value": items})

    async def get_one(request: web.Request) -> web.Response:
        authorize(request, rules.permissions(segment, write=False))
        method = _find(request, odata)
        context = _context(request, f"users('{request.match_info['id']}')/authentication/{segment}/$entity")
        return web.json_response({"@odata.context": context, **visible(method, _state(request))})

    async def delete_one(request: web.Request) -> web.Response:
        authorize(request, rules.permissions(segment, write=True))
        user = _user(request)
        method = _find(request, odata)
        rules.check_delete(method, user["methods"], user.get("defaultMethodId"))
        user["methods"].remove(method)
        if method["id"] == user.get("defaultMethodId"):
            # The last method went: no default until the user registers again.
            user["defaultMethodId"] = None
            _bookkeeping(_state(request))["preferred"].pop(user["id"], None)
        return web.Response(status=204)

    return list_of_type, get_one, delete_one


# --- Phones and email -----------------------------------------------------------------------------------


async def create_phone(request: web.Request) -> web.Response:
    authorize(request, rules.permissions("phoneMethods", write=True))
    user = _user(request)
    body = rules.check_body(await _body(request), rules.PHONE, rules.PHONE_WRITABLE, rules.PHONE_READ_ONLY)
    number = rules.check_phone_number(body.get("phoneNumber"))
    kind = rules.check_phone_type(body.get("phoneType"))
    phones = {m.get("phoneType") for m in user["methods"] if m["@odata.type"] == rules.PHONE}
    rules.check_new_phone(kind, phones)
    method = {
        "@odata.type": rules.PHONE,
        "id": rules.PHONE_IDS[kind],
        "phoneNumber": number,
        "phoneType": kind,
        "smsSignInState": "notAllowedByPolicy",
    }
    user["methods"].append(method)
    _set_default_if_none(user, method)
    context = _context(request, f"users('{request.match_info['id']}')/authentication/phoneMethods/$entity")
    return web.json_response({"@odata.context": context, **method}, status=201)


async def update_phone(request: web.Request) -> web.Response:
    authorize(request, rules.permissions("phoneMethods", write=True))
    method = _find(request, rules.PHONE)
    body = rules.check_body(await _body(request), rules.PHONE, rules.PHONE_WRITABLE, rules.PHONE_READ_ONLY)
    if "phoneType" in body and body["phoneType"] != method["phoneType"]:
        # "You can't change a phone's type." (phoneauthenticationmethod-update); the message is undocumented.
        raise bad_request("The phoneType of a phone method cannot be changed.", "badRequest")
    if "phoneNumber" in body:
        method["phoneNumber"] = rules.check_phone_number(body["phoneNumber"])
    return web.Response(status=204)


async def create_email(request: web.Request) -> web.Response:
    """One email method per user, with its fixed id; the address must look like one (message undocumented)."""
    authorize(request, rules.permissions("emailMethods", write=True))
    user = _user(request)
    body = rules.check_body(await _body(request), rules.EMAIL, {"emailAddress"}, {"id"})
    address = body.get("emailAddress")
    if not isinstance(address, str) or "@" not in address.strip("@"):
        raise bad_request(f"Invalid email address '{address}'.", "badRequest")
    if any(m["@odata.type"] == rules.EMAIL for m in user["methods"]):
        raise bad_request("The user already has an email authentication method.", "badRequest")
    method = {"@odata.type": rules.EMAIL, "id": rules.EMAIL_ID, "emailAddress": address}
    user["methods"].append(method)
    context = _context(request, f"users('{request.match_info['id']}')/authentication/emailMethods/$entity")
    return web.json_response({"@odata.context": context, **method}, status=201)


# --- Temporary Access Pass ------------------------------------------------------------------------------


def _targeted(state: TenantState, user_id: str, targets: list[dict[str, Any]]) -> bool:
    groups = set(transitive_containers(state, user_id))
    return any(t.get("id") == "all_users" or t.get("id") in groups or t.get("id") == user_id for t in targets)


def _check_tap_allowed(state: TenantState, user_id: str) -> dict[str, Any]:
    """The policy must be enabled and target the user (includeTargets, not excludeTargets), else Graph refuses."""
    policy = tap_policy(state)
    if policy.get("state") != "enabled":
        raise bad_request(rules.TAP_POLICY_ERROR, "badRequest")
    if not _targeted(state, user_id, policy.get("includeTargets", [])) or _targeted(
        state, user_id, policy.get("excludeTargets", [])
    ):
        raise bad_request(rules.TAP_POLICY_ERROR, "badRequest")
    return policy


async def create_tap(request: web.Request) -> web.Response:
    authorize(request, rules.permissions("temporaryAccessPassMethods", write=True))
    state = _state(request)
    user = _user(request)
    body = rules.check_body(await _body(request), rules.TAP, rules.TAP_WRITABLE, rules.TAP_READ_ONLY)
    policy = _check_tap_allowed(state, user["id"])
    lifetime = rules.tap_lifetime(body, policy)
    once = rules.tap_usable_once(body, policy)
    now = state.now()
    start = rules.parse_time(body["startDateTime"], "startDateTime") if "startDateTime" in body else now
    method = {
        "@odata.type": rules.TAP,
        "id": str(uuid.uuid4()),
        "temporaryAccessPass": None,  # never stored: the pass exists only in this response
        "createdDateTime": rules.stamp(now),
        "startDateTime": rules.stamp(start),
        "lifetimeInMinutes": lifetime,
        "isUsableOnce": once,
    }
    # A user has one pass: a new one deletes the previous (authentication-post-temporaryaccesspassmethods).
    user["methods"][:] = [m for m in user["methods"] if m["@odata.type"] != rules.TAP]
    user["methods"].append(method)
    state.extras.setdefault("taps_issued", []).append({"userId": user["id"], "methodId": method["id"]})
    context = _context(
        request, f"users('{request.match_info['id']}')/authentication/temporaryAccessPassMethods/$entity"
    )
    response = {
        "@odata.context": context,
        **method,
        **rules.tap_usability(method, policy, now),
        "temporaryAccessPass": rules.tap_secret(int(policy.get("defaultLength", 8))),
    }
    return web.json_response(response, status=201)


def _config(request: web.Request) -> dict[str, Any]:
    # Only the TAP configuration is emulated; its id is TemporaryAccessPass (the path segment is case-insensitive).
    if request.match_info["config"].lower() != "temporaryaccesspass":
        raise not_found(f"Authentication method configuration '{request.match_info['config']}' was not found.")
    return tap_policy(_state(request))


async def get_policy(request: web.Request) -> web.Response:
    authorize(request, POLICY_READ)
    policy = _config(request)
    context = _context(request, "authenticationMethodConfigurations/$entity")
    return web.json_response({"@odata.context": context, **policy})


async def patch_policy(request: web.Request) -> web.Response:
    authorize(request, POLICY_WRITE)
    policy = _config(request)
    body = rules.check_body(await _body(request), policy["@odata.type"], rules.POLICY_WRITABLE, {"id"})
    body.pop("@odata.type", None)
    rules.check_policy({**policy, **body})
    policy.update(body)
    return web.Response(status=204)


# --- Sign-in preferences (beta) -------------------------------------------------------------------------


async def get_sign_in_preferences(request: web.Request) -> web.Response:
    """The default MFA method (user["defaultMethodId"]) as userPreferredMethodForSecondaryAuthentication."""
    authorize(request, rules.ALL_READ)
    user = _user(request)
    books = _bookkeeping(_state(request))
    default = next((m for m in user["methods"] if m["id"] == user.get("defaultMethodId")), None)
    system = bool(books["systemPreferred"].get(user["id"], False))
    body = {
        "@odata.context": _context(request, f"users('{request.match_info['id']}')/authentication/signInPreferences"),
        "@odata.type": SIGN_IN_PREFERENCES,
        "isSystemPreferredAuthenticationMethodEnabled": system,
        "userPreferredMethodForSecondaryAuthentication": rules.preferred_value(
            default, books["preferred"].get(user["id"])
        ),
        # Not on the current resource page but present in Graph's beta responses; null unless system-preferred.
        "systemPreferredAuthenticationMethod": rules.system_preferred(user["methods"]) if system else None,
    }
    return web.json_response(body)


async def patch_sign_in_preferences(request: web.Request) -> web.Response:
    authorize(request, PREFERENCES_WRITE)
    user = _user(request)
    writable = {"userPreferredMethodForSecondaryAuthentication", "isSystemPreferredAuthenticationMethodEnabled"}
    body = rules.check_body(
        await _body(request), SIGN_IN_PREFERENCES, writable, {"systemPreferredAuthenticationMethod"}
    )
    books = _bookkeeping(_state(request))
    if "isSystemPreferredAuthenticationMethodEnabled" in body:
        enabled = body["isSystemPreferredAuthenticationMethodEnabled"]
        if not isinstance(enabled, bool):
            raise bad_request("Invalid value for 'isSystemPreferredAuthenticationMethodEnabled'.", "BadRequest")
        books["systemPreferred"][user["id"]] = enabled
    if "userPreferredMethodForSecondaryAuthentication" in body:
        value = body["userPreferredMethodForSecondaryAuthentication"]
        if value not in rules.PREFERRED_KINDS:
            raise bad_request(
                f"Invalid value '{value}' for userPreferredMethodForSecondaryAuthentication.", "BadRequest"
            )
        method = rules.method_for_preference(value, user["methods"])
        if method is None:
            # Undocumented; Graph cannot make a method the user has not registered the default.
            raise bad_request(f"The user has no registered method for '{value}'.", "badRequest")
        user["defaultMethodId"] = method["id"]
        books["preferred"][user["id"]] = value
    return web.Response(status=204)


async def beta_only_segment(request: web.Request) -> web.Response:
    """v1.0 has no hardwareOathMethods: Graph's answer for a path segment the version does not define."""
    authorize(request, rules.ALL_READ)
    raise bad_request("Resource not found for the segment 'hardwareOathMethods'.", "BadRequest")


# --- Control --------------------------------------------------------------------------------------------


async def control_register(request: web.Request) -> web.Response:
    """POST /_control/users/{id}/methods {Graph-shaped method}: the user registers a method now (e.g. a passkey
    after signing in with the TAP). Fills id and createdDateTime; a fixed-id type replaces the user's old one."""
    state = _state(request)
    user = state.user(request.match_info["id"])
    method = await _body(request)
    if not isinstance(method, dict) or method.get("@odata.type") not in rules.SEGMENT_OF:
        raise bad_request("@odata.type must name an authentication method type.")
    method = dict(method)
    if method["@odata.type"] == rules.PHONE:
        kind = rules.check_phone_type(method.get("phoneType"))
        method["id"] = rules.PHONE_IDS[kind]
        method.setdefault("smsSignInState", "notAllowedByPolicy")
    elif method["@odata.type"] == rules.EMAIL:
        method["id"] = rules.EMAIL_ID
    method.setdefault("id", str(uuid.uuid4()))
    method.setdefault("createdDateTime", rules.stamp(state.now()))
    user["methods"][:] = [m for m in user["methods"] if m["id"] != method["id"]]
    user["methods"].append(method)
    _set_default_if_none(user, method)
    return web.json_response(method, status=201)


def setup(app: web.Application) -> None:
    r = app.router
    policy = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{config}"
    for version in rules.BOTH:
        r.add_get(f"{version}{BASE}/methods", list_all)
        r.add_get(f"{version}{BASE}/methods/{{method}}", get_any)
        r.add_post(f"{version}{BASE}/phoneMethods", create_phone)
        r.add_patch(f"{version}{BASE}/phoneMethods/{{method}}", update_phone)
        r.add_post(f"{version}{BASE}/emailMethods", create_email)
        r.add_post(f"{version}{BASE}/temporaryAccessPassMethods", create_tap)
        r.add_get(version + policy, get_policy)
        r.add_patch(version + policy, patch_policy)
        for segment, (_, _, versions) in rules.TYPES.items():
            if version not in versions:
                continue
            list_of_type, get_one, delete_one = typed(segment)
            r.add_get(f"{version}{BASE}/{segment}", list_of_type)
            r.add_get(f"{version}{BASE}/{segment}/{{method}}", get_one)
            r.add_delete(f"{version}{BASE}/{segment}/{{method}}", delete_one)
    r.add_route("*", f"{rules.V1}{BASE}/hardwareOathMethods{{tail:.*}}", beta_only_segment)
    r.add_get(f"{rules.BETA}{BASE}/signInPreferences", get_sign_in_preferences)
    r.add_patch(f"{rules.BETA}{BASE}/signInPreferences", patch_sign_in_preferences)
    r.add_post("/_control/users/{id}/methods", control_register)
