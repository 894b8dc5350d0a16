"""The local tenant's authentication methods, driven through msgraph-sdk (typed) and httpx with a managed-identity
token (raw): list/get/delete per type, phone and TAP rules, the TAP policy, sign-in preferences, permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from msgraph.generated.models.authentication_phone_type import AuthenticationPhoneType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_authentication_method import PasswordAuthenticationMethod
from msgraph.generated.models.phone_authentication_method import PhoneAuthenticationMethod
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.temporary_access_pass_authentication_method_configuration import (
    TemporaryAccessPassAuthenticationMethodConfiguration,
)

from local.tenant import TenantServer
from local.tenant.method_rules import DEFAULT_ERROR
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U = F.U
MOBILE, ALT, OFFICE = F.MOBILE_ID, F.ALT_MOBILE_ID, F.OFFICE_ID
TOM_AUTHENTICATOR = F.oid("33333333", 4)
TOM_FIDO2 = F.oid("44444444", 4)
TOM_HARDWARE = F.oid("88888888", 4)
MEGAN_AUTHENTICATOR = F.oid("33333333", 3)
AUTH = "/users/{}/authentication"
POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass"
LIMITED = F.APP["limited"][0]
ADMIN_TOOL = F.APP["admin_tool"][0]
# Every method tom has that can go while his default (the mobile phone) stays: (collection, id).
TOM_DELETABLE = [
    ("microsoftAuthenticatorMethods", TOM_AUTHENTICATOR),
    ("softwareOathMethods", F.oid("55555555", 4)),
    ("fido2Methods", TOM_FIDO2),
    ("windowsHelloForBusinessMethods", F.oid("66666666", 4)),
    ("emailMethods", F.EMAIL_ID),
    ("temporaryAccessPassMethods", F.oid("99999999", 4)),
    ("platformCredentialMethods", F.oid("77777777", 4)),
    ("phoneMethods", OFFICE),
    ("phoneMethods", ALT),
]


class Raw:
    """httpx against the tenant's Graph with a token from ManagedIdentityCredential (as identity `client_id`)."""

    def __init__(self, tenant: TenantServer, client_id: str | None = None):
        self.tenant = tenant
        self.client_id = client_id
        self._token: str | None = None

    async def token(self) -> str:
        if self._token is None:
            async with ManagedIdentityCredential(client_id=self.client_id) as credential:
                self._token = (await credential.get_token(GRAPH_SCOPE)).token
        return self._token

    async def __call__(self, method: str, path: str, body: Any = None, version: str = "v1.0") -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        async with httpx.AsyncClient(base_url=f"{self.tenant.url}/{version}") as client:
            return await client.request(method, path, json=body, headers=headers)


@pytest.fixture
def raw(tenant_env: TenantServer) -> Raw:
    return Raw(tenant_env)


@pytest.fixture
def admin_tool(tenant_env: TenantServer) -> Raw:
    """A caller with UserAuthenticationMethod.ReadWrite.All: the function's identity holds only the per-method
    permissions, which the password and signInPreferences rules never reach."""
    return Raw(tenant_env, ADMIN_TOOL)


def limited(tenant: TenantServer, *roles: str) -> Raw:
    """A caller whose app roles are exactly `roles` (the fixture's limited identity, re-granted)."""
    tenant.state.applications[LIMITED]["graphRoles"] = list(roles)
    return Raw(tenant, LIMITED)


def user(tenant: TenantServer, key: str) -> dict[str, Any]:
    return tenant.state.users[U[key]]


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


def set_policy(tenant: TenantServer, **values: Any) -> None:
    tenant.state.policies["temporaryAccessPass"].update(values)


# --- Lists and gets -------------------------------------------------------------------------------------


async def test_typed_list_returns_every_v1_method_including_the_password(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    result = await client.users.by_user_id(U["tom"]).authentication.methods.get()
    types = {type(m).__name__ for m in result.value}
    assert {"PasswordAuthenticationMethod", "PhoneAuthenticationMethod", "Fido2AuthenticationMethod"} <= types
    assert {"TemporaryAccessPassAuthenticationMethod", "PlatformCredentialAuthenticationMethod"} <= types
    assert TOM_HARDWARE not in {m.id for m in result.value}  # hardware OATH is beta only


async def test_raw_list_carries_the_odata_context_and_no_hardware_oath_in_v1(raw: Raw):
    response = await raw("GET", AUTH.format(U["tom"]) + "/methods")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == (
        f"https://graph.microsoft.com/v1.0/$metadata#users('{U['tom']}')/authentication/methods"
    )
    ids = {m["id"] for m in body["value"]}
    assert F.PASSWORD_ID in ids
    assert TOM_HARDWARE not in ids


async def test_beta_list_includes_hardware_oath_tokens(raw: Raw):
    response = await raw("GET", AUTH.format(U["tom"]) + "/methods", version="beta")
    assert TOM_HARDWARE in {m["id"] for m in response.json()["value"]}


async def test_a_method_is_read_by_id_from_the_generic_collection_and_unknown_ids_are_404(raw: Raw):
    found = await raw("GET", AUTH.format(U["tom"]) + f"/methods/{TOM_FIDO2}")
    assert found.status_code == 200
    assert found.json()["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod"
    missing = await raw("GET", AUTH.format(U["tom"]) + "/methods/00000000-dead-4000-8000-000000000000")
    assert missing.status_code == 404
    assert error(missing)["code"] == "itemNotFound"


async def test_a_method_is_not_found_under_another_types_collection(raw: Raw):
    response = await raw("GET", AUTH.format(U["tom"]) + f"/phoneMethods/{TOM_FIDO2}")
    assert response.status_code == 404


async def test_every_per_type_collection_lists_gets_and_deletes_its_methods(tenant_env: TenantServer, raw: Raw):
    for segment, method_id in TOM_DELETABLE:
        listed = await raw("GET", AUTH.format(U["tom"]) + f"/{segment}")
        assert listed.status_code == 200, segment
        assert listed.json()["@odata.context"].endswith(f"/authentication/{segment}")
        assert method_id in {m["id"] for m in listed.json()["value"]}, segment
        got = await raw("GET", AUTH.format(U["tom"]) + f"/{segment}/{method_id}")
        assert got.status_code == 200, segment
        assert got.json()["id"] == method_id, segment
        deleted = await raw("DELETE", AUTH.format(U["tom"]) + f"/{segment}/{method_id}")
        assert deleted.status_code == 204, (segment, deleted.text)
    left = {m["id"] for m in user(tenant_env, "tom")["methods"]}
    assert left == {F.PASSWORD_ID, MOBILE, TOM_HARDWARE}


async def test_typed_delete_of_a_passkey_removes_it(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    fido2 = client.users.by_user_id(U["tom"]).authentication.fido2_methods
    await fido2.by_fido2_authentication_method_id(TOM_FIDO2).delete()
    remaining = await fido2.get()
    assert remaining.value == []


async def test_hardware_oath_is_served_in_beta_only(raw: Raw):
    v1 = await raw("GET", AUTH.format(U["tom"]) + "/hardwareOathMethods")
    assert v1.status_code == 400
    assert "hardwareOathMethods" in error(v1)["message"]
    beta = await raw("GET", AUTH.format(U["tom"]) + "/hardwareOathMethods", version="beta")
    assert [m["id"] for m in beta.json()["value"]] == [TOM_HARDWARE]
    gone = await raw("DELETE", AUTH.format(U["tom"]) + f"/hardwareOathMethods/{TOM_HARDWARE}", version="beta")
    assert gone.status_code == 204


async def test_the_password_is_listed_typed_but_cannot_be_deleted(tenant_env: TenantServer, admin_tool: Raw):
    client = graph_client(tenant_env)
    passwords = await client.users.by_user_id(U["tom"]).authentication.password_methods.get()
    assert [type(p) for p in passwords.value] == [PasswordAuthenticationMethod]
    assert passwords.value[0].id == F.PASSWORD_ID
    assert passwords.value[0].password is None
    response = await admin_tool("DELETE", AUTH.format(U["tom"]) + f"/passwordMethods/{F.PASSWORD_ID}")
    assert response.status_code == 405
    assert any(m["id"] == F.PASSWORD_ID for m in user(tenant_env, "tom")["methods"])


# --- The default method ---------------------------------------------------------------------------------


async def test_the_default_method_cannot_be_deleted_while_others_remain(tenant_env: TenantServer, raw: Raw):
    response = await raw("DELETE", AUTH.format(U["tom"]) + f"/phoneMethods/{MOBILE}")
    assert response.status_code == 400
    assert error(response) | {"innerError": None} == {
        "code": "badRequest",
        "message": DEFAULT_ERROR,
        "innerError": None,
    }
    assert user(tenant_env, "tom")["defaultMethodId"] == MOBILE


async def test_the_last_method_is_deleted_even_when_default_and_the_default_is_cleared(
    tenant_env: TenantServer, raw: Raw
):
    client = graph_client(tenant_env)
    phones = client.users.by_user_id(U["priya"]).authentication.phone_methods
    await phones.by_phone_authentication_method_id(MOBILE).delete()
    assert user(tenant_env, "priya")["defaultMethodId"] is None
    preferences = await raw("GET", AUTH.format(U["priya"]) + "/signInPreferences", version="beta")
    assert preferences.json()["userPreferredMethodForSecondaryAuthentication"] is None


async def test_typed_default_delete_refusal_surfaces_as_odata_error(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    phones = client.users.by_user_id(U["tom"]).authentication.phone_methods
    with pytest.raises(ODataError) as caught:
        await phones.by_phone_authentication_method_id(MOBILE).delete()
    assert caught.value.response_status_code == 400
    assert caught.value.error.message == DEFAULT_ERROR


# --- Phones ---------------------------------------------------------------------------------------------


async def test_typed_phone_create_returns_201_with_the_fixed_mobile_id(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    phone = PhoneAuthenticationMethod(phone_number="+49 15123456789", phone_type=AuthenticationPhoneType.Mobile)
    created = await client.users.by_user_id(U["nora"]).authentication.phone_methods.post(phone)
    assert created.id == MOBILE
    assert created.phone_number == "+49 15123456789"
    assert created.phone_type == AuthenticationPhoneType.Mobile
    assert user(tenant_env, "nora")["defaultMethodId"] == MOBILE  # her first second factor


async def test_raw_phone_create_answers_201_with_the_entity_context(raw: Raw):
    response = await raw(
        "POST", AUTH.format(U["nora"]) + "/phoneMethods", {"phoneNumber": "+1 5555551234x123", "phoneType": "office"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == OFFICE
    assert body["@odata.context"].endswith("/authentication/phoneMethods/$entity")
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "number", ["+1 (206) 555-0102", "+1 206 555 0102", "12065550102", "+1-2065550102", "+1 2065550102 x12", "", 42]
)
async def test_phone_numbers_outside_the_documented_format_are_refused(raw: Raw, number: Any):
    response = await raw(
        "POST", AUTH.format(U["nora"]) + "/phoneMethods", {"phoneNumber": number, "phoneType": "mobile"}
    )
    assert response.status_code == 400
    assert "+{country code} {number}x{extension}" in error(response)["message"]


async def test_phone_type_must_be_mobile_alternate_mobile_or_office(raw: Raw):
    response = await raw(
        "POST", AUTH.format(U["nora"]) + "/phoneMethods", {"phoneNumber": "+1 2065550199", "phoneType": "fax"}
    )
    assert response.status_code == 400
    assert "phoneType" in error(response)["message"]


async def test_a_second_phone_of_the_same_type_is_refused(raw: Raw):
    response = await raw(
        "POST", AUTH.format(U["priya"]) + "/phoneMethods", {"phoneNumber": "+44 2079460019", "phoneType": "mobile"}
    )
    assert response.status_code == 400


async def test_an_alternate_mobile_needs_a_mobile(raw: Raw):
    body = {"phoneNumber": "+1 2065550111", "phoneType": "alternateMobile"}
    refused = await raw("POST", AUTH.format(U["nora"]) + "/phoneMethods", body)
    assert refused.status_code == 400
    accepted = await raw("POST", AUTH.format(U["priya"]) + "/phoneMethods", body)
    assert accepted.status_code == 201
    assert accepted.json()["id"] == ALT


async def test_the_mobile_cannot_be_deleted_while_an_alternate_mobile_exists(tenant_env: TenantServer, raw: Raw):
    megan = AUTH.format(U["megan"])  # her default is the Authenticator, so only the phone rule applies
    assert (
        await raw("POST", megan + "/phoneMethods", {"phoneNumber": "+1 2065550120", "phoneType": "alternateMobile"})
    ).status_code == 201
    refused = await raw("DELETE", megan + f"/phoneMethods/{MOBILE}")
    assert refused.status_code == 400
    assert "alternateMobile" in error(refused)["message"]
    assert (await raw("DELETE", megan + f"/phoneMethods/{ALT}")).status_code == 204
    assert (await raw("DELETE", megan + f"/phoneMethods/{MOBILE}")).status_code == 204


async def test_typed_phone_update_changes_the_number_and_answers_204(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    phone = client.users.by_user_id(U["priya"]).authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
    result = await phone.patch(PhoneAuthenticationMethod(phone_number="+44 2079460099"))
    assert result is None  # 204 No Content
    assert user(tenant_env, "priya")["methods"][1]["phoneNumber"] == "+44 2079460099"


async def test_phone_update_checks_the_number_and_keeps_the_type(raw: Raw):
    path = AUTH.format(U["priya"]) + f"/phoneMethods/{MOBILE}"
    assert (await raw("PATCH", path, {"phoneNumber": "2079460099"})).status_code == 400
    assert (await raw("PATCH", path, {"phoneType": "office"})).status_code == 400
    assert (await raw("PATCH", path, {"phoneNumber": "+44 2079460098", "phoneType": "mobile"})).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "version"),
    [
        ("POST", AUTH + "/phoneMethods", {"phoneNumber": "+1 2065550199", "phoneType": "office", "extra": 1}, "v1.0"),
        ("PATCH", AUTH + f"/phoneMethods/{MOBILE}", {"phoneNumbr": "+1 2065550199"}, "v1.0"),
        ("POST", AUTH + "/emailMethods", {"emailAddress": "a@example.org", "mail": "x"}, "v1.0"),
        ("POST", AUTH + "/temporaryAccessPassMethods", {"lifetimeInMinutes": 60, "length": 12}, "v1.0"),
        ("PATCH", AUTH + "/signInPreferences", {"preferredMethod": "push"}, "beta"),
    ],
)
async def test_unknown_properties_are_refused_with_graphs_odata_message(
    admin_tool: Raw, method: str, path: str, body: dict, version: str
):
    response = await admin_tool(method, path.format(U["priya"]), body, version=version)
    assert response.status_code == 400
    assert "does not exist on type" in error(response)["message"]


async def test_unknown_properties_are_refused_on_the_policy_patch(tenant_env: TenantServer):
    caller = limited(tenant_env, "Policy.ReadWrite.AuthenticationMethod")
    response = await caller("PATCH", POLICY, {"defaultLifetimeInMinutes": 90, "lifetime": 5})
    assert response.status_code == 400
    assert "does not exist on type" in error(response)["message"]


async def test_read_only_properties_are_refused_on_create(raw: Raw):
    body = {"phoneNumber": "+1 2065550199", "phoneType": "office", "smsSignInState": "ready"}
    response = await raw("POST", AUTH.format(U["nora"]) + "/phoneMethods", body)
    assert response.status_code == 400
    assert "read-only" in error(response)["message"]


async def test_email_method_create_gives_the_fixed_id_once(raw: Raw):
    path = AUTH.format(U["nora"]) + "/emailMethods"
    created = await raw("POST", path, {"emailAddress": "nora.home@example.org"})
    assert created.status_code == 201
    assert created.json()["id"] == F.EMAIL_ID
    assert (await raw("POST", path, {"emailAddress": "other@example.org"})).status_code == 400


# --- Temporary Access Pass ------------------------------------------------------------------------------


async def test_typed_tap_create_returns_the_pass_once_and_reads_show_null(tenant_env: TenantServer, raw: Raw):
    client = graph_client(tenant_env)
    taps = client.users.by_user_id(U["nora"]).authentication.temporary_access_pass_methods
    created = await taps.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=120))
    assert len(created.temporary_access_pass) == 8  # the policy's defaultLength
    assert created.lifetime_in_minutes == 120
    assert created.is_usable is True
    assert created.method_usability_reason == "EnabledByPolicy"
    assert created.is_usable_once is False
    assert created.created_date_time is not None
    assert created.start_date_time is not None
    listed = await raw("GET", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods")
    assert [t["temporaryAccessPass"] for t in listed.json()["value"]] == [None]
    one = await raw("GET", AUTH.format(U["nora"]) + f"/temporaryAccessPassMethods/{created.id}")
    assert one.json()["temporaryAccessPass"] is None
    assert one.json()["isUsable"] is True
    assert created.temporary_access_pass not in str(tenant_env.state.users[U["nora"]])


async def test_raw_tap_create_answers_201_with_every_documented_field(raw: Raw):
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})
    assert response.status_code == 201
    body = response.json()
    assert {
        "id",
        "temporaryAccessPass",
        "createdDateTime",
        "startDateTime",
        "lifetimeInMinutes",
        "isUsableOnce",
    } <= set(body)
    assert body["isUsable"] is True
    assert body["methodUsabilityReason"] == "EnabledByPolicy"


async def test_tap_length_follows_the_policy_default_length(tenant_env: TenantServer, raw: Raw):
    set_policy(tenant_env, defaultLength=20)
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})
    assert len(response.json()["temporaryAccessPass"]) == 20


async def test_tap_lifetime_must_lie_inside_the_policys_minimum_and_maximum(raw: Raw):
    path = AUTH.format(U["nora"]) + "/temporaryAccessPassMethods"
    for lifetime in (59, 481):
        response = await raw("POST", path, {"lifetimeInMinutes": lifetime})
        assert response.status_code == 400
        assert error(response)["message"] == "Invalid LifetimeInMinutes specified. The valid range between 60 and 480."
    for lifetime in (60, 480):
        assert (await raw("POST", path, {"lifetimeInMinutes": lifetime})).status_code == 201


async def test_tap_lifetime_must_lie_between_10_and_43200_whatever_the_policy(tenant_env: TenantServer, raw: Raw):
    set_policy(tenant_env, minimumLifetimeInMinutes=1, maximumLifetimeInMinutes=100_000)  # wider than Graph allows
    path = AUTH.format(U["nora"]) + "/temporaryAccessPassMethods"
    for lifetime in (9, 43_201):
        response = await raw("POST", path, {"lifetimeInMinutes": lifetime})
        assert response.status_code == 400
        assert "between 10 and 43200" in error(response)["message"]
    assert (await raw("POST", path, {"lifetimeInMinutes": 43_200})).status_code == 201


async def test_tap_lifetime_defaults_to_the_policys_default(tenant_env: TenantServer, raw: Raw):
    set_policy(tenant_env, defaultLifetimeInMinutes=240)
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {"isUsableOnce": True})
    assert response.json()["lifetimeInMinutes"] == 240


async def test_a_one_time_policy_makes_every_pass_one_time(tenant_env: TenantServer, raw: Raw):
    set_policy(tenant_env, isUsableOnce=True)
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {"isUsableOnce": False})
    assert response.status_code == 201
    assert response.json()["isUsableOnce"] is True


async def test_a_new_pass_replaces_the_users_existing_one(tenant_env: TenantServer, raw: Raw):
    path = AUTH.format(U["nora"]) + "/temporaryAccessPassMethods"
    first = (await raw("POST", path, {})).json()["id"]
    second = (await raw("POST", path, {})).json()["id"]
    listed = await raw("GET", path)
    assert [t["id"] for t in listed.json()["value"]] == [second]
    assert first != second


async def test_a_disabled_tap_policy_refuses_new_passes(tenant_env: TenantServer, raw: Raw):
    set_policy(tenant_env, state="disabled")
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})
    assert response.status_code == 400
    assert "TemporaryAccessPass" in error(response)["message"]
    assert not any(
        m["@odata.type"].endswith("temporaryAccessPassAuthenticationMethod")
        for m in user(tenant_env, "nora")["methods"]
    )


async def test_only_users_the_policy_targets_get_a_pass(tenant_env: TenantServer, raw: Raw):
    set_policy(
        tenant_env, includeTargets=[{"targetType": "group", "id": F.G["onboarding"], "isRegistrationRequired": False}]
    )
    path = "/temporaryAccessPassMethods"
    assert (await raw("POST", AUTH.format(U["nora"]) + path, {})).status_code == 400
    tenant_env.state.groups[F.G["onboarding"]]["members"].append(U["nora"])
    assert (await raw("POST", AUTH.format(U["nora"]) + path, {})).status_code == 201


async def test_users_in_an_excluded_group_get_no_pass(tenant_env: TenantServer, raw: Raw):
    tenant_env.state.groups[F.G["onboarding"]]["members"].append(U["nora"])
    set_policy(tenant_env, excludeTargets=[{"targetType": "group", "id": F.G["onboarding"]}])
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})
    assert response.status_code == 400


async def test_a_pass_starting_later_is_not_yet_usable(raw: Raw):
    start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    response = await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {"startDateTime": start})
    body = response.json()
    assert body["isUsable"] is False
    assert body["methodUsabilityReason"] == "NotYetValid"


async def test_a_pass_reads_as_expired_once_its_lifetime_is_over(tenant_env: TenantServer, raw: Raw):
    created = (await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})).json()
    httpx.post(f"{tenant_env.url}/_control/clock", json={"advanceSeconds": 61 * 60})
    got = await raw("GET", AUTH.format(U["nora"]) + f"/temporaryAccessPassMethods/{created['id']}")
    assert got.json()["isUsable"] is False
    assert got.json()["methodUsabilityReason"] == "Expired"


# --- The TAP policy -------------------------------------------------------------------------------------


async def test_typed_policy_get_by_configuration_id(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    configs = client.policies.authentication_methods_policy.authentication_method_configurations
    policy = await configs.by_authentication_method_configuration_id("TemporaryAccessPass").get()
    assert isinstance(policy, TemporaryAccessPassAuthenticationMethodConfiguration)
    assert (policy.default_lifetime_in_minutes, policy.minimum_lifetime_in_minutes) == (60, 60)
    assert (policy.maximum_lifetime_in_minutes, policy.default_length, policy.is_usable_once) == (480, 8, False)
    assert policy.include_targets[0].id == "all_users"


async def test_raw_policy_get_by_path_carries_the_documented_context(raw: Raw):
    response = await raw("GET", POLICY)
    assert response.status_code == 200
    body = response.json()
    assert (
        body["@odata.context"]
        == "https://graph.microsoft.com/v1.0/$metadata#authenticationMethodConfigurations/$entity"
    )
    assert body["id"] == "TemporaryAccessPass"
    assert body["state"] == "enabled"
    assert (await raw("GET", POLICY.replace("temporaryAccessPass", "Sms"))).status_code == 404


async def test_policy_read_needs_an_authentication_method_policy_permission(tenant_env: TenantServer):
    assert (await limited(tenant_env, "User.Read.All")("GET", POLICY)).status_code == 403
    assert (await limited(tenant_env, "Policy.ReadWrite.AuthenticationMethod")("GET", POLICY)).status_code == 200


async def test_policy_patch_needs_readwrite_and_applies_valid_changes(tenant_env: TenantServer, raw: Raw):
    assert (await raw("PATCH", POLICY, {"defaultLifetimeInMinutes": 90})).status_code == 403  # func can only read
    writer = limited(tenant_env, "Policy.ReadWrite.AuthenticationMethod")
    body = {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "isUsableOnce": True,
    }
    assert (await writer("PATCH", POLICY, body)).status_code == 204
    assert tenant_env.state.policies["temporaryAccessPass"]["isUsableOnce"] is True


@pytest.mark.parametrize(
    "change",
    [
        {"minimumLifetimeInMinutes": 5},
        {"maximumLifetimeInMinutes": 50_000},
        {"defaultLifetimeInMinutes": 500},
        {"defaultLength": 7},
        {"defaultLength": 49},
        {"state": "paused"},
    ],
)
async def test_policy_patch_outside_the_documented_ranges_is_refused(tenant_env: TenantServer, change: dict):
    writer = limited(tenant_env, "Policy.ReadWrite.AuthenticationMethod")
    response = await writer("PATCH", POLICY, change)
    assert response.status_code == 400
    assert tenant_env.state.policies["temporaryAccessPass"]["defaultLength"] == 8


# --- Sign-in preferences (beta) -------------------------------------------------------------------------


async def test_sign_in_preferences_show_the_default_method(raw: Raw):
    tom = await raw("GET", AUTH.format(U["tom"]) + "/signInPreferences", version="beta")
    assert tom.status_code == 200
    assert tom.json()["userPreferredMethodForSecondaryAuthentication"] == "sms"
    assert tom.json()["isSystemPreferredAuthenticationMethodEnabled"] is False
    megan = await raw("GET", AUTH.format(U["megan"]) + "/signInPreferences", version="beta")
    assert megan.json()["userPreferredMethodForSecondaryAuthentication"] == "push"


async def test_sign_in_preferences_are_beta_only(raw: Raw):
    assert (await raw("GET", AUTH.format(U["tom"]) + "/signInPreferences")).status_code == 404


async def test_patching_the_preferred_method_moves_the_default(tenant_env: TenantServer, admin_tool: Raw):
    path = AUTH.format(U["tom"]) + "/signInPreferences"
    prefer_push = {"userPreferredMethodForSecondaryAuthentication": "push"}
    response = await admin_tool("PATCH", path, prefer_push, version="beta")
    assert response.status_code == 204
    assert user(tenant_env, "tom")["defaultMethodId"] == TOM_AUTHENTICATOR
    preferences = (await admin_tool("GET", path, version="beta")).json()
    assert preferences["userPreferredMethodForSecondaryAuthentication"] == "push"
    # The mobile is no longer the default, so only the Authenticator is now protected.
    assert (await admin_tool("DELETE", AUTH.format(U["tom"]) + f"/phoneMethods/{ALT}")).status_code == 204
    assert (await admin_tool("DELETE", AUTH.format(U["tom"]) + f"/phoneMethods/{MOBILE}")).status_code == 204


async def test_the_preferred_method_must_be_registered(tenant_env: TenantServer, admin_tool: Raw):
    path = AUTH.format(U["priya"]) + "/signInPreferences"
    prefer_push = {"userPreferredMethodForSecondaryAuthentication": "push"}
    response = await admin_tool("PATCH", path, prefer_push, version="beta")
    assert response.status_code == 400
    assert user(tenant_env, "priya")["defaultMethodId"] == MOBILE


async def test_system_preferred_mfa_reports_the_strongest_method(admin_tool: Raw):
    path = AUTH.format(U["tom"]) + "/signInPreferences"
    await admin_tool("PATCH", path, {"isSystemPreferredAuthenticationMethodEnabled": True}, version="beta")
    body = (await admin_tool("GET", path, version="beta")).json()
    assert body["isSystemPreferredAuthenticationMethodEnabled"] is True
    assert body["systemPreferredAuthenticationMethod"] == "fido2"


# --- Permissions ----------------------------------------------------------------------------------------


async def test_listing_all_methods_needs_user_authentication_method_read(tenant_env: TenantServer):
    path = AUTH.format(U["tom"]) + "/methods"
    assert (await limited(tenant_env, "User.Read.All")("GET", path)).status_code == 403
    assert (await limited(tenant_env, "UserAuthMethod-Phone.Read.All")("GET", path)).status_code == 403
    assert (await limited(tenant_env, "UserAuthenticationMethod.Read.All")("GET", path)).status_code == 200


@pytest.mark.parametrize(
    ("granular", "segment"),
    [
        ("Phone", "phoneMethods"),
        ("Email", "emailMethods"),
        ("Passkey", "fido2Methods"),
        ("MicrosoftAuthApp", "microsoftAuthenticatorMethods"),
        ("SoftwareOATH", "softwareOathMethods"),
        ("WindowsHello", "windowsHelloForBusinessMethods"),
        ("TAP", "temporaryAccessPassMethods"),
        ("PlatformCred", "platformCredentialMethods"),
        ("Password", "passwordMethods"),
    ],
)
async def test_a_per_method_read_permission_opens_only_its_own_collection(
    tenant_env: TenantServer, granular: str, segment: str
):
    caller = limited(tenant_env, f"UserAuthMethod-{granular}.Read.All")
    assert (await caller("GET", AUTH.format(U["tom"]) + f"/{segment}")).status_code == 200
    other = "fido2Methods" if segment != "fido2Methods" else "phoneMethods"
    assert (await caller("GET", AUTH.format(U["tom"]) + f"/{other}")).status_code == 403


async def test_hardware_oath_accepts_its_per_method_permission_in_beta(tenant_env: TenantServer):
    caller = limited(tenant_env, "UserAuthMethod-HardwareOATH.ReadWrite.All")
    path = AUTH.format(U["tom"]) + f"/hardwareOathMethods/{TOM_HARDWARE}"
    assert (await caller("DELETE", path, version="beta")).status_code == 204


async def test_writes_need_the_readwrite_permission_of_their_method(tenant_env: TenantServer):
    path = AUTH.format(U["tom"]) + f"/phoneMethods/{OFFICE}"
    assert (await limited(tenant_env, "UserAuthMethod-Phone.Read.All")("DELETE", path)).status_code == 403
    assert (await limited(tenant_env, "UserAuthMethod-TAP.ReadWrite.All")("DELETE", path)).status_code == 403
    assert (await limited(tenant_env, "UserAuthMethod-Phone.ReadWrite.All")("DELETE", path)).status_code == 204
    tap = limited(tenant_env, "UserAuthMethod-TAP.ReadWrite.All")
    assert (await tap("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})).status_code == 201


async def test_typed_call_without_permission_raises_403(tenant_env: TenantServer):
    client = graph_client(tenant_env, client_id=LIMITED)
    with pytest.raises(ODataError) as caught:
        await client.users.by_user_id(U["tom"]).authentication.methods.get()
    assert caught.value.response_status_code == 403


# --- Control --------------------------------------------------------------------------------------------


async def test_control_registration_adds_a_method_that_becomes_the_first_default(tenant_env: TenantServer, raw: Raw):
    passkey = {
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
        "displayName": "Nora's passkey",
        "aaGuid": "de1e552d-db1d-4423-a619-566b625cdc84",
    }
    registered = httpx.post(f"{tenant_env.url}/_control/users/{U['nora']}/methods", json=passkey)
    assert registered.status_code == 201
    method_id = registered.json()["id"]
    assert registered.json()["createdDateTime"]
    listed = await raw("GET", AUTH.format(U["nora"]) + "/fido2Methods")
    assert [m["id"] for m in listed.json()["value"]] == [method_id]
    assert user(tenant_env, "nora")["defaultMethodId"] == method_id


async def test_control_registration_refuses_a_non_method(tenant_env: TenantServer):
    response = httpx.post(f"{tenant_env.url}/_control/users/{U['nora']}/methods", json={"@odata.type": "#x"})
    assert response.status_code == 400


async def test_reads_never_show_a_pass_even_one_registered_with_a_value(tenant_env: TenantServer, raw: Raw):
    tap = {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "temporaryAccessPass": "leaked-pass",
        "startDateTime": "2099-01-01T00:00:00Z",
        "lifetimeInMinutes": 60,
        "isUsableOnce": True,
    }
    httpx.post(f"{tenant_env.url}/_control/users/{U['nora']}/methods", json=tap)
    listed = await raw("GET", AUTH.format(U["nora"]) + "/methods")
    assert "leaked-pass" not in listed.text
    assert [m["methodUsabilityReason"] for m in listed.json()["value"] if "lifetimeInMinutes" in m] == ["NotYetValid"]


async def test_a_pass_reads_as_disabled_by_policy_when_the_method_is_turned_off(tenant_env: TenantServer, raw: Raw):
    created = (await raw("POST", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods", {})).json()
    set_policy(tenant_env, state="disabled")
    got = await raw("GET", AUTH.format(U["nora"]) + f"/temporaryAccessPassMethods/{created['id']}")
    assert got.json()["methodUsabilityReason"] == "DisabledByPolicy"
    assert got.json()["isUsable"] is False
