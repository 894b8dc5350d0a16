"""Graph's rules for authentication methods, as pure functions: types, permissions, request bodies, phones, TAPs.

graph_methods.py holds the HTTP handlers; everything here raises GraphError and touches no request. Sources are
named at each rule; where the documentation is silent the comment says so and what we chose.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import GraphError, bad_request

V1, BETA = "/v1.0", "/beta"
BOTH = (V1, BETA)
PASSWORD_ID = "28c10230-6103-485e-b985-444c60001490"
EMAIL_ID = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f"
# Fixed phone method ids: https://learn.microsoft.com/graph/api/phoneauthenticationmethod-update
PHONE_IDS = {
    "mobile": "3179e48a-750b-4051-897c-87b9720928f7",
    "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
    "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}
MAX_LIFETIME = 43_200  # minutes (30 days): resources/temporaryaccesspassauthenticationmethod
MIN_LIFETIME = 10

# collection segment → (@odata.type, suffix of the per-method permission, versions that serve it).
# The per-method permissions UserAuthMethod-<suffix>.Read[Write].All came in October 2025
# (https://learn.microsoft.com/graph/whats-new-overview, "Identity and access | Identity and sign-in") and are
# listed on each per-type page, e.g. https://learn.microsoft.com/graph/api/phoneauthenticationmethod-get .
TYPES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "phoneMethods": ("#microsoft.graph.phoneAuthenticationMethod", "Phone", BOTH),
    "emailMethods": ("#microsoft.graph.emailAuthenticationMethod", "Email", BOTH),
    "fido2Methods": ("#microsoft.graph.fido2AuthenticationMethod", "Passkey", BOTH),
    "microsoftAuthenticatorMethods": (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "MicrosoftAuthApp",
        BOTH,
    ),
    "softwareOathMethods": ("#microsoft.graph.softwareOathAuthenticationMethod", "SoftwareOATH", BOTH),
    "windowsHelloForBusinessMethods": (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "WindowsHello",
        BOTH,
    ),
    "temporaryAccessPassMethods": ("#microsoft.graph.temporaryAccessPassAuthenticationMethod", "TAP", BOTH),
    "platformCredentialMethods": ("#microsoft.graph.platformCredentialAuthenticationMethod", "PlatformCred", BOTH),
    "passwordMethods": ("#microsoft.graph.passwordAuthenticationMethod", "Password", BOTH),
    # Hardware OATH tokens are beta only: https://learn.microsoft.com/graph/api/authentication-list-hardwareoathmethods
    "hardwareOathMethods": ("#microsoft.graph.hardwareOathAuthenticationMethod", "HardwareOATH", (BETA,)),
}
ODATA = {segment: odata for segment, (odata, _, _) in TYPES.items()}
SEGMENT_OF = {odata: segment for segment, odata in ODATA.items()}
V1_TYPES = {odata for odata, _, versions in TYPES.values() if V1 in versions}
PASSWORD = ODATA["passwordMethods"]
PHONE = ODATA["phoneMethods"]
TAP = ODATA["temporaryAccessPassMethods"]
EMAIL = ODATA["emailMethods"]
# Methods that can be a user's default second factor (the first one registered becomes the default).
NOT_DEFAULT_CAPABLE = {PASSWORD, TAP, EMAIL}

ALL_READ = ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
ALL_WRITE = ("UserAuthenticationMethod.ReadWrite.All",)


def permissions(segment: str, write: bool) -> tuple[str, ...]:
    """The application permissions a per-type route accepts: the granular one first, then the broad ones."""
    granular = TYPES[segment][1]
    if write:
        return (f"UserAuthMethod-{granular}.ReadWrite.All", *ALL_WRITE)
    return (f"UserAuthMethod-{granular}.Read.All", f"UserAuthMethod-{granular}.ReadWrite.All", *ALL_READ)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"Invalid value for '{name}': '{value}' is not a valid DateTimeOffset.", "BadRequest"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- Request bodies -------------------------------------------------------------------------------------


def check_body(
    body: Any, odata_type: str, writable: set[str], read_only: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A POST/PATCH body: a JSON object of writable properties of `odata_type`, else Graph's 400.

    Unknown properties get the OData deserializer's message (Graph answers it for any property the type does
    not define); read-only ones are refused too. The docs name neither error for these endpoints.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    declared = body.get("@odata.type")
    if declared is not None and declared.lstrip("#") != odata_type.lstrip("#"):
        raise bad_request(
            f"A resource of type '{declared.lstrip('#')}' was found in a resource set that expects "
            f"'{odata_type.lstrip('#')}'.",
            "BadRequest",
        )
    for name in body:
        if name == "@odata.type" or name in writable:
            continue
        if name in read_only:
            raise bad_request(f"The property '{name}' is read-only and cannot be set.", "BadRequest")
        raise bad_request(
            f"The property '{name}' does not exist on type '{odata_type.lstrip('#')}'. Make sure to only use "
            "property names that are defined by the type or mark the type as open type.",
            "BadRequest",
        )
    return body


# --- Phones ---------------------------------------------------------------------------------------------

# "+{country code} {number}x{extension}, with extension optional. For example, +1 5555551234 or
# +1 5555551234x123 are valid. Numbers are rejected when creating or updating if they don't match the required
# format." (https://learn.microsoft.com/graph/api/authentication-post-phonemethods). Country codes have 1–3
# digits (E.164); the subscriber part is digits only, with no inner spaces or punctuation.
PHONE_NUMBER = re.compile(r"^\+[1-9]\d{0,2} \d{4,15}(x\d{1,10})?$")
PHONE_WRITABLE = {"phoneNumber", "phoneType"}
PHONE_READ_ONLY = {"id", "smsSignInState"}


def check_phone_number(number: Any) -> str:
    if not isinstance(number, str) or not PHONE_NUMBER.match(number):
        # The exact message is undocumented; the docs only say such numbers are rejected.
        raise bad_request(
            f"Invalid phone number '{number}'. Phone numbers must use the format "
            "'+{country code} {number}x{extension}', with extension optional.",
            "badRequest",
        )
    return number


def check_phone_type(kind: Any) -> str:
    if kind not in PHONE_IDS:
        raise bad_request(
            f"Invalid phoneType '{kind}'. Possible values are: mobile, alternateMobile, office.", "badRequest"
        )
    return kind


def check_new_phone(kind: str, existing: set[str]) -> None:
    """One phone per type; alternateMobile only beside a mobile
    (https://learn.microsoft.com/graph/api/authentication-post-phonemethods). Messages are undocumented."""
    if kind in existing:
        raise bad_request(f"The user already has a phone method of type '{kind}'.", "badRequest")
    if kind == "alternateMobile" and "mobile" not in existing:
        raise bad_request("A user must have a mobile phone before an alternateMobile phone is added.", "badRequest")


# --- The default method ---------------------------------------------------------------------------------

# Graph's answer (quoted in microsoftgraph/microsoft-graph-docs-contrib#2913) when the default MFA method is
# deleted while others remain; the delete pages say the default "can't be deleted".
DEFAULT_ERROR = (
    "Cannot delete default method with other methods configured. Please change default method before deletion."
)


def check_delete(method: dict[str, Any], methods: list[dict[str, Any]], default_id: str | None) -> None:
    """The rules a DELETE must pass: password never, default last, mobile after alternateMobile."""
    if method["@odata.type"] == PASSWORD:
        # The password has no DELETE operation (resources/passwordauthenticationmethod lists List, Get, Reset);
        # Graph's exact answer is undocumented, so we give the HTTP status for an operation the resource lacks.
        raise GraphError(405, "methodNotAllowed", "The password authentication method cannot be deleted.")
    others = [m for m in methods if m is not method and m["@odata.type"] != PASSWORD]
    if method["id"] == default_id and others:
        raise GraphError(400, "badRequest", DEFAULT_ERROR)
    if method.get("phoneType") == "mobile" and any(m.get("phoneType") == "alternateMobile" for m in others):
        # "A user can't have an alternateMobile number without a mobile number. If you want to remove a mobile
        # number from a user that also has an alternateMobile number, first update the mobile number to the new
        # number, then delete the alternateMobile number." (phoneauthenticationmethod-delete). Message undocumented.
        raise bad_request(
            "The mobile phone cannot be deleted while the user has an alternateMobile phone.", "badRequest"
        )


# signInPreferences.userPreferredMethodForSecondaryAuthentication values (userDefaultAuthenticationMethodType,
# https://learn.microsoft.com/graph/api/resources/signinpreferences?view=graph-rest-beta) and what they name.
PREFERRED_KINDS = ("push", "oath", "voiceMobile", "voiceAlternateMobile", "voiceOffice", "sms")


def preferred_value(method: dict[str, Any] | None, remembered: str | None) -> str | None:
    """The userDefaultAuthenticationMethodType of a default method (None for kinds the enum has no value for)."""
    if method is None:
        return None
    odata = method["@odata.type"]
    if odata == ODATA["microsoftAuthenticatorMethods"]:
        return "push"
    if odata in (ODATA["softwareOathMethods"], ODATA["hardwareOathMethods"]):
        return "oath"
    if odata == PHONE:
        kind = method.get("phoneType")
        if kind == "mobile":
            return remembered if remembered in ("sms", "voiceMobile") else "sms"
        return {"alternateMobile": "voiceAlternateMobile", "office": "voiceOffice"}.get(kind)
    return None


def method_for_preference(value: str, methods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The user's method a userPreferredMethodForSecondaryAuthentication value points at, if registered."""
    for method in methods:
        if preferred_value(method, value) == value:
            return method
    return None


# System-preferred MFA ranks methods by strength (https://learn.microsoft.com/entra/identity/authentication/
# concept-system-preferred-multifactor-authentication); we report the strongest registered one.
_SYSTEM_RANK = (
    (ODATA["fido2Methods"], "fido2"),
    (ODATA["microsoftAuthenticatorMethods"], "push"),
    (ODATA["softwareOathMethods"], "oath"),
    (ODATA["hardwareOathMethods"], "oath"),
    (PHONE, "sms"),
)


def system_preferred(methods: list[dict[str, Any]]) -> str | None:
    present = {m["@odata.type"] for m in methods}
    return next((value for odata, value in _SYSTEM_RANK if odata in present), None)


# --- Temporary Access Pass ------------------------------------------------------------------------------

TAP_WRITABLE = {"startDateTime", "lifetimeInMinutes", "isUsableOnce"}
TAP_READ_ONLY = {"id", "temporaryAccessPass", "createdDateTime", "isUsable", "methodUsabilityReason"}
# What Graph said when a TAP was refused by the authentication methods policy (portal message quoted in
# MicrosoftDocs/azure-docs#111778); the API's exact answer is undocumented.
TAP_POLICY_ERROR = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)


def _lifetime_error(low: int, high: int) -> GraphError:
    # Graph's message, quoted in microsoftgraph/microsoft-graph-docs#12187 (policy range 60–480).
    return GraphError(
        400, "badRequest", f"Invalid LifetimeInMinutes specified. The valid range between {low} and {high}."
    )


def tap_lifetime(body: dict[str, Any], policy: dict[str, Any]) -> int:
    """lifetimeInMinutes: the policy default when absent; 10–43,200 and inside the policy's min/max
    (https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods)."""
    lifetime = body.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
    if not isinstance(lifetime, int) or isinstance(lifetime, bool):
        raise bad_request(f"Invalid value for 'lifetimeInMinutes': '{lifetime}' is not an Int32.", "BadRequest")
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise _lifetime_error(MIN_LIFETIME, MAX_LIFETIME)
    low, high = policy["minimumLifetimeInMinutes"], policy["maximumLifetimeInMinutes"]
    if not low <= lifetime <= high:
        raise _lifetime_error(low, high)
    return lifetime


def tap_usable_once(body: dict[str, Any], policy: dict[str, Any]) -> bool:
    """isUsableOnce: "If true, all the passes in the tenant will be restricted to one-time use"
    (resources/temporaryaccesspassauthenticationmethodconfiguration). Whether Graph refuses or coerces an
    explicit false is undocumented; we coerce, so the pass is one-time whatever the caller asked."""
    once = body.get("isUsableOnce", False)
    if not isinstance(once, bool):
        raise bad_request(f"Invalid value for 'isUsableOnce': '{once}' is not a Boolean.", "BadRequest")
    return True if policy.get("isUsableOnce") else once


def tap_secret(length: int) -> str:
    """A pass of the policy's defaultLength (8–48); Graph's example pass "+drkzqAD" mixes letters and symbols."""
    alphabet = string.ascii_letters + string.digits + "+!@#$%&*="
    return "".join(secrets.choice(alphabet) for _ in range(length))


def tap_usability(tap: dict[str, Any], policy: dict[str, Any], now: datetime) -> dict[str, Any]:
    """isUsable and methodUsabilityReason (EnabledByPolicy, DisabledByPolicy, Expired, NotYetValid, OneTimeUsed)
    as of `now`: https://learn.microsoft.com/graph/api/resources/temporaryaccesspassauthenticationmethod"""
    if tap.get("methodUsabilityReason") == "OneTimeUsed":
        return {"isUsable": False, "methodUsabilityReason": "OneTimeUsed"}
    start = parse_time(tap["startDateTime"], "startDateTime")
    reason = "EnabledByPolicy"
    if policy.get("state") != "enabled":
        reason = "DisabledByPolicy"
    elif now >= start + timedelta(minutes=tap["lifetimeInMinutes"]):
        reason = "Expired"
    elif now < start:
        reason = "NotYetValid"
    return {"isUsable": reason == "EnabledByPolicy", "methodUsabilityReason": reason}


# --- The TAP policy -------------------------------------------------------------------------------------

POLICY_WRITABLE = {
    "state",
    "defaultLifetimeInMinutes",
    "defaultLength",
    "minimumLifetimeInMinutes",
    "maximumLifetimeInMinutes",
    "isUsableOnce",
    "includeTargets",
    "excludeTargets",
}


def check_policy(merged: dict[str, Any]) -> None:
    """The configuration's documented ranges (resources/temporaryaccesspassauthenticationmethodconfiguration):
    lifetimes 10–43,200 with default between min and max, defaultLength 8–48, state enabled|disabled."""
    ints = ("defaultLifetimeInMinutes", "defaultLength", "minimumLifetimeInMinutes", "maximumLifetimeInMinutes")
    for name in ints:
        value = merged[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_request(f"Invalid value for '{name}': '{value}' is not an Int32.", "BadRequest")
    if merged["state"] not in ("enabled", "disabled"):
        raise bad_request(f"Invalid value for 'state': '{merged['state']}'.", "badRequest")
    low, high = merged["minimumLifetimeInMinutes"], merged["maximumLifetimeInMinutes"]
    if not MIN_LIFETIME <= low <= high <= MAX_LIFETIME:
        raise bad_request("Lifetimes must be between 10 and 43200 minutes, minimum not above maximum.", "badRequest")
    if not low <= merged["defaultLifetimeInMinutes"] <= high:
        raise bad_request("defaultLifetimeInMinutes must be between the minimum and maximum lifetime.", "badRequest")
    if not 8 <= merged["defaultLength"] <= 48:
        raise bad_request("defaultLength must be between 8 and 48 characters.", "badRequest")
    if not isinstance(merged["isUsableOnce"], bool):
        raise bad_request("Invalid value for 'isUsableOnce'.", "BadRequest")
    for name in ("includeTargets", "excludeTargets"):
        targets = merged[name]
        if not isinstance(targets, list) or not all(isinstance(t, dict) and t.get("id") for t in targets):
            raise bad_request(f"Invalid value for '{name}': each target needs an id.", "BadRequest")
