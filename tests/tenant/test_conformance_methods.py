"""Conformance of the local tenant's authentication-method endpoints with Microsoft Graph, driven only through
real clients: msgraph-sdk typed calls and raw httpx with a token from ManagedIdentityCredential (or one the tenant
issues for an app defined here). Sources: https://learn.microsoft.com/graph/api/authentication-list-methods,
authentication-post-phonemethods, phoneauthenticationmethod-delete, authentication-post-temporaryaccesspassmethods,
temporaryaccesspassauthenticationmethodconfiguration-get/-update, authentication-get?view=graph-rest-beta.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from msgraph.generated.models.authentication_phone_type import AuthenticationPhoneType
from msgraph.generated.models.fido2_authentication_method import Fido2AuthenticationMethod
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
from local.tenant.auth import app_token
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U, G = F.U, F.G
MOBILE, ALT, OFFICE = F.MOBILE_ID, F.ALT_MOBILE_ID, F.OFFICE_ID
TOM_FIDO2 = F.oid("44444444", 4)
TOM_HARDWARE = F.oid("88888888", 4)
AUTH = "/users/{}/authentication"
POLICY = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
# Graph's answer for deleting the default MFA method while others remain (quoted in
# microsoftgraph/microsoft-graph-docs-contrib#2913; the delete pages say the default "can't be deleted").
DEFAULT_METHOD_ERROR = (
    "Cannot delete default method with other methods configured. Please change default method before deletion."
)
# An app registered here that may change the authentication methods policy and group members.
POLICY_ADMIN = {
    "appId": "c0ffee00-0000-4000-8000-000000000002",
    "servicePrincipalId": "c0ffee00-0000-4000-8000-0000000000a2",
    "displayName": "conformance-policy-admin",
    "kind": "managedIdentity",
    "graphRoles": ["Policy.ReadWrite.AuthenticationMethod", "GroupMember.ReadWrite.All"],
}
# Every method Tom has that can go while his default (the mobile phone) stays: (collection, id).
TOM_DELETABLE = [
    ("microsoftAuthenticatorMethods", F.oid("33333333", 4)),
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
    """httpx against the tenant's Graph; the bearer comes from ManagedIdentityCredential unless given."""

    def __init__(self, tenant: TenantServer, token: str | None = None):
        self.tenant = tenant
        self._token = token

    async def token(self) -> str:
        if self._token is None:
            async with ManagedIdentityCredential() as credential:
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
def admin(tenant_env: TenantServer) -> Raw:
    return Raw(tenant_env, token=app_token(tenant_env.state, POLICY_ADMIN, "https://graph.microsoft.com"))


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


async def patch_policy(admin: Raw, **change: Any) -> None:
    response = await admin("PATCH", POLICY, change)
    assert response.status_code == 204, response.text


async def new_tap(raw: Raw, user: str, **body: Any) -> httpx.Response:
    return await raw("POST", AUTH.format(U[user]) + "/temporaryAccessPassMethods", body)


# --- List and get ---------------------------------------------------------------------------------------


async def test_typed_list_includes_the_password_and_no_hardware_oath_in_v1(tenant_env: TenantServer):
    result = await graph_client(tenant_env).users.by_user_id(U["tom"]).authentication.methods.get()
    ids = {m.id for m in result.value}
    assert any(isinstance(m, PasswordAuthenticationMethod) for m in result.value)
    assert F.PASSWORD_ID in ids
    assert TOM_HARDWARE not in ids
    assert len(ids) == 11  # password, three phones, authenticator, OATH, passkey, WHfB, email, TAP, platform


async def test_raw_beta_list_includes_hardware_oath(raw: Raw):
    v1 = await raw("GET", AUTH.format(U["tom"]) + "/methods")
    beta = await raw("GET", AUTH.format(U["tom"]) + "/methods", version="beta")
    assert TOM_HARDWARE not in {m["id"] for m in v1.json()["value"]}
    assert TOM_HARDWARE in {m["id"] for m in beta.json()["value"]}


async def test_typed_get_of_one_method_returns_its_derived_type(tenant_env: TenantServer):
    methods = graph_client(tenant_env).users.by_user_id(U["tom"]).authentication.methods
    method = await methods.by_authentication_method_id(TOM_FIDO2).get()
    assert isinstance(method, Fido2AuthenticationMethod)
    assert method.display_name == "YubiKey 5 NFC"


async def test_raw_get_of_an_unknown_method_is_404(raw: Raw):
    response = await raw("GET", AUTH.format(U["tom"]) + "/methods/00000000-dead-4000-8000-000000000000")
    assert response.status_code == 404


# --- Delete ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("segment", "method_id"), TOM_DELETABLE, ids=[f"{s}-{i[:8]}" for s, i in TOM_DELETABLE])
async def test_raw_delete_per_type_answers_204_and_the_method_goes(raw: Raw, segment: str, method_id: str):
    path = AUTH.format(U["tom"]) + f"/{segment}/{method_id}"
    response = await raw("DELETE", path)
    assert response.status_code == 204, response.text
    assert (await raw("GET", path)).status_code == 404


async def test_typed_fido2_delete_removes_the_passkey(tenant_env: TenantServer, raw: Raw):
    fido2 = graph_client(tenant_env).users.by_user_id(U["tom"]).authentication.fido2_methods
    assert await fido2.by_fido2_authentication_method_id(TOM_FIDO2).delete() is None
    listed = await raw("GET", AUTH.format(U["tom"]) + "/fido2Methods")
    assert listed.json()["value"] == []


async def test_the_default_method_is_refused_while_others_remain_with_graphs_message(raw: Raw):
    response = await raw("DELETE", AUTH.format(U["tom"]) + f"/phoneMethods/{MOBILE}")
    assert response.status_code == 400
    assert error(response)["code"] == "badRequest"
    assert error(response)["message"] == DEFAULT_METHOD_ERROR


async def test_typed_default_method_refusal_surfaces_as_odata_error(tenant_env: TenantServer):
    phones = graph_client(tenant_env).users.by_user_id(U["megan"]).authentication.microsoft_authenticator_methods
    with pytest.raises(ODataError) as caught:
        await phones.by_microsoft_authenticator_authentication_method_id(F.oid("33333333", 3)).delete()
    assert caught.value.response_status_code == 400
    assert caught.value.error.message == DEFAULT_METHOD_ERROR


async def test_the_default_method_is_deleted_when_it_is_the_last_one(tenant_env: TenantServer, raw: Raw):
    phones = graph_client(tenant_env).users.by_user_id(U["priya"]).authentication.phone_methods
    assert await phones.by_phone_authentication_method_id(MOBILE).delete() is None
    left = await raw("GET", AUTH.format(U["priya"]) + "/methods")
    assert [m["id"] for m in left.json()["value"]] == [F.PASSWORD_ID]


async def test_the_password_method_cannot_be_deleted(tenant_env: TenantServer):
    # An administrator's tool: the function's identity has no permission that reaches the password method.
    tool = tenant_env.state.applications[F.APP["admin_tool"][0]]
    raw = Raw(tenant_env, token=app_token(tenant_env.state, tool, "https://graph.microsoft.com"))
    path = AUTH.format(U["priya"]) + f"/passwordMethods/{F.PASSWORD_ID}"
    response = await raw("DELETE", path)
    assert response.status_code == 405
    assert (await raw("GET", path)).status_code == 200


# --- Phones ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+1 2065550100", "+1 2065550100x123"])
async def test_typed_phone_create_accepts_the_documented_format(tenant_env: TenantServer, number: str):
    phones = graph_client(tenant_env).users.by_user_id(U["nora"]).authentication.phone_methods
    created = await phones.post(
        PhoneAuthenticationMethod(phone_number=number, phone_type=AuthenticationPhoneType.Mobile)
    )
    assert (created.id, created.phone_number, created.phone_type) == (MOBILE, number, AuthenticationPhoneType.Mobile)


@pytest.mark.parametrize("number", ["2065550100", "+1 (206) 555-0100", "+12065550100"])
async def test_raw_phone_create_refuses_numbers_outside_the_documented_format(raw: Raw, number: str):
    path = AUTH.format(U["nora"]) + "/phoneMethods"
    response = await raw("POST", path, {"phoneNumber": number, "phoneType": "mobile"})
    assert response.status_code == 400
    assert (await raw("GET", path)).json()["value"] == []


async def test_a_user_has_at_most_one_phone_of_each_type(raw: Raw):
    path = AUTH.format(U["priya"]) + "/phoneMethods"
    again = await raw("POST", path, {"phoneNumber": "+44 2079460019", "phoneType": "mobile"})
    assert again.status_code == 400
    office = await raw("POST", path, {"phoneNumber": "+44 2079460019", "phoneType": "office"})
    assert office.status_code == 201


async def test_an_alternate_mobile_needs_a_mobile(raw: Raw):
    body = {"phoneNumber": "+1 2065550111", "phoneType": "alternateMobile"}
    assert (await raw("POST", AUTH.format(U["nora"]) + "/phoneMethods", body)).status_code == 400
    assert (await raw("POST", AUTH.format(U["priya"]) + "/phoneMethods", body)).status_code == 201


async def test_an_unknown_property_in_a_phone_create_is_400(raw: Raw):
    body = {"phoneNumber": "+1 2065550100", "phoneType": "mobile", "isDefault": True}
    response = await raw("POST", AUTH.format(U["nora"]) + "/phoneMethods", body)
    assert response.status_code == 400
    assert "isDefault" in error(response)["message"]


async def test_the_mobile_cannot_be_deleted_while_an_alternate_mobile_remains(raw: Raw):
    # phoneauthenticationmethod-delete: remove the alternateMobile first. Megan's default is her Authenticator.
    megan = AUTH.format(U["megan"]) + "/phoneMethods"
    body = {"phoneNumber": "+1 2065550120", "phoneType": "alternateMobile"}
    assert (await raw("POST", megan, body)).status_code == 201
    assert (await raw("DELETE", f"{megan}/{MOBILE}")).status_code == 400
    assert (await raw("DELETE", f"{megan}/{ALT}")).status_code == 204
    assert (await raw("DELETE", f"{megan}/{MOBILE}")).status_code == 204


# --- Temporary Access Pass ------------------------------------------------------------------------------


async def test_typed_tap_create_returns_the_pass_only_in_the_create_response(tenant_env: TenantServer, raw: Raw):
    taps = graph_client(tenant_env).users.by_user_id(U["nora"]).authentication.temporary_access_pass_methods
    created = await taps.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=120))
    assert created.temporary_access_pass
    assert (created.lifetime_in_minutes, created.is_usable, created.method_usability_reason) == (
        120,
        True,
        "EnabledByPolicy",
    )
    got = await raw("GET", AUTH.format(U["nora"]) + f"/temporaryAccessPassMethods/{created.id}")
    assert got.status_code == 200
    assert got.json()["temporaryAccessPass"] is None
    listed = await raw("GET", AUTH.format(U["nora"]) + "/methods")
    assert created.temporary_access_pass not in listed.text


@pytest.mark.parametrize("lifetime", [9, 43_201])
async def test_tap_lifetime_outside_10_to_43200_is_refused_even_when_the_policy_allows_it_all(
    admin: Raw, raw: Raw, lifetime: int
):
    await patch_policy(admin, minimumLifetimeInMinutes=10, maximumLifetimeInMinutes=43_200)
    response = await new_tap(raw, "nora", lifetimeInMinutes=lifetime)
    assert response.status_code == 400
    assert error(response)["message"] == "Invalid LifetimeInMinutes specified. The valid range between 10 and 43200."


async def test_tap_lifetime_at_10_and_43200_is_accepted_when_the_policy_allows_it(admin: Raw, raw: Raw):
    await patch_policy(admin, minimumLifetimeInMinutes=10, maximumLifetimeInMinutes=43_200)
    assert (await new_tap(raw, "nora", lifetimeInMinutes=10)).status_code == 201
    assert (await new_tap(raw, "nora", lifetimeInMinutes=43_200)).status_code == 201


@pytest.mark.parametrize("lifetime", [59, 481])
async def test_tap_lifetime_outside_the_policys_60_to_480_is_refused(raw: Raw, lifetime: int):
    response = await new_tap(raw, "nora", lifetimeInMinutes=lifetime)
    assert response.status_code == 400
    assert error(response)["message"] == "Invalid LifetimeInMinutes specified. The valid range between 60 and 480."


@pytest.mark.parametrize("lifetime", [60, 480])
async def test_tap_lifetime_at_the_policys_bounds_is_accepted(raw: Raw, lifetime: int):
    response = await new_tap(raw, "nora", lifetimeInMinutes=lifetime)
    assert response.status_code == 201
    assert response.json()["lifetimeInMinutes"] == lifetime


async def test_tap_lifetime_defaults_to_the_policys_default(admin: Raw, raw: Raw):
    assert (await new_tap(raw, "nora")).json()["lifetimeInMinutes"] == 60
    await patch_policy(admin, defaultLifetimeInMinutes=240)
    assert (await new_tap(raw, "nora")).json()["lifetimeInMinutes"] == 240


async def test_a_one_time_policy_forces_is_usable_once(admin: Raw, raw: Raw):
    assert (await new_tap(raw, "nora", isUsableOnce=False)).json()["isUsableOnce"] is False
    await patch_policy(admin, isUsableOnce=True)
    response = await new_tap(raw, "nora", isUsableOnce=False)
    assert response.status_code == 201
    assert response.json()["isUsableOnce"] is True


async def test_a_new_tap_replaces_the_users_existing_one(raw: Raw):
    first = (await new_tap(raw, "nora")).json()["id"]
    second = (await new_tap(raw, "nora")).json()["id"]
    listed = await raw("GET", AUTH.format(U["nora"]) + "/temporaryAccessPassMethods")
    assert [t["id"] for t in listed.json()["value"]] == [second]
    assert first != second


async def test_a_disabled_tap_policy_refuses_new_passes(admin: Raw, raw: Raw):
    await patch_policy(admin, state="disabled")
    response = await new_tap(raw, "nora")
    assert response.status_code == 400
    assert "TemporaryAccessPass" in error(response)["message"]


async def test_a_user_outside_the_policys_include_targets_gets_no_pass_until_added(admin: Raw, raw: Raw):
    await patch_policy(admin, includeTargets=[{"targetType": "group", "id": G["onboarding"]}])
    refused = await new_tap(raw, "nora")
    assert refused.status_code == 400
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{U['nora']}"}
    assert (await admin("POST", f"/groups/{G['onboarding']}/members/$ref", ref)).status_code == 204
    assert (await new_tap(raw, "nora")).status_code == 201


async def test_a_user_in_the_policys_exclude_targets_gets_no_pass(admin: Raw, raw: Raw):
    await patch_policy(admin, excludeTargets=[{"targetType": "group", "id": G["phone_staging"]}])
    assert (await new_tap(raw, "nora")).status_code == 400  # Nora is in phone staging
    assert (await new_tap(raw, "lena")).status_code == 201


# --- The TAP policy -------------------------------------------------------------------------------------


async def test_typed_tap_policy_get_returns_the_configuration(tenant_env: TenantServer):
    configs = graph_client(tenant_env).policies.authentication_methods_policy.authentication_method_configurations
    policy = await configs.by_authentication_method_configuration_id("TemporaryAccessPass").get()
    assert isinstance(policy, TemporaryAccessPassAuthenticationMethodConfiguration)
    assert (policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes) == (60, 480)
    assert (policy.default_lifetime_in_minutes, policy.default_length, policy.is_usable_once) == (60, 8, False)


async def test_raw_tap_policy_get_reflects_a_patch(admin: Raw, raw: Raw):
    await patch_policy(admin, maximumLifetimeInMinutes=720)
    response = await raw("GET", POLICY)
    assert response.status_code == 200
    assert response.json()["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
    assert response.json()["maximumLifetimeInMinutes"] == 720


async def test_the_policy_patch_needs_policy_readwrite(raw: Raw):
    response = await raw("PATCH", POLICY, {"isUsableOnce": True})
    assert response.status_code == 403  # the function app holds Policy.Read.AuthenticationMethod only


# --- Sign-in preferences (beta) and registration --------------------------------------------------------


async def test_beta_sign_in_preferences_name_the_default_method(raw: Raw):
    tom = await raw("GET", AUTH.format(U["tom"]) + "/signInPreferences", version="beta")
    assert tom.status_code == 200
    assert tom.json()["userPreferredMethodForSecondaryAuthentication"] == "sms"
    megan = await raw("GET", AUTH.format(U["megan"]) + "/signInPreferences", version="beta")
    assert megan.json()["userPreferredMethodForSecondaryAuthentication"] == "push"


async def test_sign_in_preferences_are_not_in_v1(raw: Raw):
    response = await raw("GET", AUTH.format(U["tom"]) + "/signInPreferences")
    assert response.status_code in (400, 404)


async def test_control_registration_adds_a_method_graph_then_lists(tenant_env: TenantServer):
    passkey = {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "displayName": "Nora's key"}
    async with httpx.AsyncClient(base_url=tenant_env.url) as control:
        registered = await control.post(f"/_control/users/{U['nora']}/methods", json=passkey)
    assert registered.status_code == 201
    result = await graph_client(tenant_env).users.by_user_id(U["nora"]).authentication.methods.get()
    [fido2] = [m for m in result.value if isinstance(m, Fido2AuthenticationMethod)]
    assert (fido2.id, fido2.display_name) == (registered.json()["id"], "Nora's key")


async def test_a_first_registered_second_factor_becomes_the_default_in_sign_in_preferences(
    tenant_env: TenantServer, raw: Raw
):
    path = AUTH.format(U["nora"]) + "/signInPreferences"
    assert (await raw("GET", path, version="beta")).json()["userPreferredMethodForSecondaryAuthentication"] is None
    app = {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "displayName": "Pixel"}
    async with httpx.AsyncClient(base_url=tenant_env.url) as control:
        assert (await control.post(f"/_control/users/{U['nora']}/methods", json=app)).status_code == 201
    assert (await raw("GET", path, version="beta")).json()["userPreferredMethodForSecondaryAuthentication"] == "push"
