"""The local tenant's Graph directory endpoints, driven through msgraph-sdk (typed) and raw httpx with a token from
ManagedIdentityCredential: users, manager, memberships, group members, sessions, registration report and directory
audits, each with the documented rules (learn.microsoft.com/graph/api/user-get, user-list, aad-advanced-queries,
user-list-manager, user-post-manager, user-list-transitivememberof, group-list-members, group-post-members,
group-delete-members, user-revokesigninsessions, authenticationmethodsroot-list-userregistrationdetails,
directoryaudit-list).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
    DirectoryAuditsRequestBuilder,
)
from msgraph.generated.models.directory_role import DirectoryRole
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.user import User
from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (  # noqa: E501
    UserRegistrationDetailsRequestBuilder,
)
from msgraph.generated.users.count.count_request_builder import CountRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from local.tenant import TenantServer
from local.tenant.auth import app_token
from local.tenant.graph_directory import record_audit
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U, G, R = F.U, F.G, F.R
LIMITED = F.APP["limited"][0]
GRAPH = "https://graph.microsoft.com"
DEFAULT_USER_KEYS = {
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
}
REGISTRATION = "/reports/authenticationMethods/userRegistrationDetails"
AUDITS = "/auditLogs/directoryAudits"


def app(n: int, name: str, *roles: str) -> dict[str, Any]:
    """A managed identity defined by a test (not in the fixture) holding exactly `roles`."""
    return {
        "appId": f"d1d1d1d1-0000-4000-8000-{n:012d}",
        "servicePrincipalId": f"d1d1d1d1-0000-4000-8001-{n:012d}",
        "displayName": name,
        "kind": "managedIdentity",
        "graphRoles": list(roles),
    }


WRITER = app(
    1, "directory-writer", "User.ReadWrite.All", "GroupMember.ReadWrite.All", "AuditLog.Read.All", "Directory.Read.All"
)
AUDIT_ONLY = app(2, "audit-only", "AuditLog.Read.All")
METHOD_READER = app(3, "method-reader", "UserAuthenticationMethod.Read.All")


class Raw:
    """httpx against the tenant's Graph with a bearer from ManagedIdentityCredential (or one given)."""

    def __init__(self, tenant: TenantServer, client_id: str | None = None, token: str | None = None):
        self.tenant = tenant
        self.client_id = client_id
        self._token = token

    async def token(self) -> str:
        if self._token is None:
            async with ManagedIdentityCredential(client_id=self.client_id) as credential:
                self._token = (await credential.get_token(GRAPH_SCOPE)).token
        return self._token

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        version: str = "v1.0",
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {await self.token()}", **(headers or {})}
        url = path if path.startswith("http") else f"{self.tenant.url}/{version}{path}"
        async with httpx.AsyncClient() as client:
            return await client.request(method, url, json=body, params=params, headers=sent)


def register(tenant: TenantServer, identity: dict[str, Any]) -> str:
    tenant.state.applications[identity["appId"]] = dict(identity)
    return identity["appId"]


@pytest.fixture
def raw(tenant_env: TenantServer) -> Raw:
    return Raw(tenant_env)


@pytest.fixture
def writer(tenant_env: TenantServer) -> Raw:
    """An app with User.ReadWrite.All and GroupMember.ReadWrite.All, calling with a token the tenant issues."""
    register(tenant_env, WRITER)
    return Raw(tenant_env, token=app_token(tenant_env.state, WRITER, GRAPH))


def ref(object_id: str, kind: str = "directoryObjects") -> dict[str, str]:
    return {"@odata.id": f"{GRAPH}/v1.0/{kind}/{object_id}"}


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


def users_config(headers: dict[str, str] | None = None, **query: Any) -> RequestConfiguration:
    config = RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**query))
    for name, value in (headers or {}).items():
        config.headers.add(name, value)
    return config


EVENTUAL = {"ConsistencyLevel": "eventual"}


def add_users(tenant: TenantServer, count: int) -> None:
    """Extra plain members so a collection outgrows the default page of 100."""
    for n in range(count):
        object_id = f"0000abcd-0000-4000-8000-{n:012d}"
        tenant.state.users[object_id] = {
            "id": object_id,
            "displayName": f"Bulk User {n:03d}",
            "userPrincipalName": f"bulk{n:03d}@contoso.local",
            "accountEnabled": True,
            "userType": "Member",
            "businessPhones": [],
            "methods": [],
            "managerId": None,
            "defaultMethodId": None,
        }


# --- GET /users/{id} ------------------------------------------------------------------------------------


async def test_typed_user_get_fills_only_the_default_property_set(tenant_env: TenantServer):
    user = await graph_client(tenant_env).users.by_user_id(U["tom"]).get()
    assert (user.id, user.display_name, user.mobile_phone) == (U["tom"], "Tom Target", "+1 (206) 555-0102")
    assert (user.department, user.account_enabled, user.user_type) == (None, None, None)


async def test_raw_user_get_returns_exactly_the_default_properties_and_no_tenant_internals(raw: Raw):
    response = await raw("GET", f"/users/{U['tom']}")
    body = response.json()
    assert body.pop("@odata.context") == f"{GRAPH}/v1.0/$metadata#users/$entity"
    assert set(body) == DEFAULT_USER_KEYS
    assert not {"managerId", "methods", "defaultMethodId"} & set(response.text.split('"'))


async def test_beta_user_get_names_the_beta_metadata_in_its_context(raw: Raw):
    response = await raw("GET", f"/users/{U['tom']}", version="beta")
    assert response.json()["@odata.context"] == f"{GRAPH}/beta/$metadata#users/$entity"


async def test_a_user_is_found_by_user_principal_name_case_insensitively(raw: Raw):
    assert (await raw("GET", "/users/TOM@contoso.local")).json()["id"] == U["tom"]


async def test_typed_select_fills_only_the_selected_properties(tenant_env: TenantServer):
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "accountEnabled"])
    user = await graph_client(tenant_env).users.by_user_id(U["dee"]).get(RequestConfiguration(query_parameters=query))
    assert (user.id, user.account_enabled, user.display_name) == (U["dee"], False, None)


async def test_raw_select_returns_the_named_properties_and_names_them_in_the_context(raw: Raw):
    response = await raw("GET", f"/users/{U['nora']}", params={"$select": "id,onPremisesExtensionAttributes"})
    body = response.json()
    assert body.pop("@odata.context").endswith("$metadata#users(id,onPremisesExtensionAttributes)/$entity")
    assert body["onPremisesExtensionAttributes"]["extensionAttribute1"] == "+49 151 23456789"
    assert set(body) == {"id", "onPremisesExtensionAttributes"}


async def test_selecting_a_tenant_internal_or_unknown_property_is_400(raw: Raw):
    for name in ("managerId", "shoeSize"):
        response = await raw("GET", f"/users/{U['tom']}", params={"$select": f"id,{name}"})
        assert response.status_code == 400
        assert f"'{name}'" in error(response)["message"]


async def test_typed_get_of_an_unknown_user_raises_odata_error_404(tenant_env: TenantServer):
    with pytest.raises(ODataError) as caught:
        await graph_client(tenant_env).users.by_user_id("00000000-0000-4000-8000-999999999999").get()
    assert (caught.value.response_status_code, caught.value.error.code) == (404, "Request_ResourceNotFound")


# --- GET /users: $filter ----------------------------------------------------------------------------------


async def test_typed_filter_on_account_enabled_and_user_type_works_without_advanced_parameters(
    tenant_env: TenantServer,
):
    config = users_config(filter="accountEnabled eq true and userType eq 'Member'", select=["id"], top=999)
    result = await graph_client(tenant_env).users.get(config)
    assert {u.id for u in result.value} == set(U.values()) - {U["dee"], U["gus"]}


async def test_raw_filter_with_startswith_or_and_in(raw: Raw):
    text = f"startswith(displayName,'dee') or id in ('{U['sam']}', '{U['omar']}')"
    response = await raw("GET", "/users", params={"$filter": text, "$select": "id"})
    assert {u["id"] for u in response.json()["value"]} == {U["dee"], U["sam"], U["omar"]}


async def test_a_string_collection_filter_matches_a_member(raw: Raw):
    response = await raw("GET", "/users", params={"$filter": "businessPhones eq '+1 425 555 0199'"})
    assert [u["id"] for u in response.json()["value"]] == [U["tom"]]


async def test_extension_attribute_filter_is_400_without_advanced_parameters_and_works_with_them(
    tenant_env: TenantServer, raw: Raw
):
    text = "onPremisesExtensionAttributes/extensionAttribute1 eq '+49 151 23456789'"
    plain = await raw("GET", "/users", params={"$filter": text})
    assert plain.status_code == 400
    assert error(plain)["code"] == "Request_UnsupportedQuery"
    assert "onPremisesExtensionAttributes/extensionAttribute1" in error(plain)["message"]
    config = users_config(EVENTUAL, filter=text, count=True)
    result = await graph_client(tenant_env).users.get(config)
    assert ([u.id for u in result.value], result.odata_count) == ([U["nora"]], 1)


async def test_ne_null_needs_consistency_level_and_count_together(raw: Raw):
    params = {"$filter": "mobilePhone ne null", "$select": "id,mobilePhone"}
    plain = await raw("GET", "/users", params=params)
    assert plain.status_code == 400
    assert error(plain)["code"] == "Request_UnsupportedQuery"
    assert "Operator 'ne'" in error(plain)["message"]
    header_only = await raw("GET", "/users", params=params, headers=EVENTUAL)
    count_only = await raw("GET", "/users", params={**params, "$count": "true"})
    assert (header_only.status_code, count_only.status_code) == (400, 400)
    advanced = await raw("GET", "/users", params={**params, "$count": "true"}, headers=EVENTUAL)
    with_mobile = {"megan", "tom", "priya", "nora", "ivan"}
    assert {u["id"] for u in advanced.json()["value"]} == {U[k] for k in with_mobile}
    assert advanced.json()["@odata.count"] == len(with_mobile)


async def test_not_and_endswith_are_advanced_query_operators(raw: Raw):
    for text in ("not(userType eq 'Member')", "endswith(mail,'@fabrikam.example')"):
        plain = await raw("GET", "/users", params={"$filter": text})
        assert plain.status_code == 400
        assert error(plain)["code"] == "Request_UnsupportedQuery"
        advanced = await raw("GET", "/users", params={"$filter": text, "$count": "true"}, headers=EVENTUAL)
        assert [u["id"] for u in advanced.json()["value"]] == [U["gus"]]


async def test_an_advanced_only_eq_property_is_400_by_default(raw: Raw):
    response = await raw("GET", "/users", params={"$filter": "mobilePhone eq '+44 20 7946 0018'"})
    assert response.status_code == 400
    assert "property 'mobilePhone' of resource 'User'" in error(response)["message"]


async def test_an_operator_a_property_does_not_support_is_400_even_in_advanced_queries(raw: Raw):
    response = await raw(
        "GET", "/users", params={"$filter": "startswith(jobTitle,'Eng')", "$count": "true"}, headers=EVENTUAL
    )
    assert response.status_code == 400
    assert error(response)["code"] == "Request_UnsupportedQuery"


async def test_a_malformed_filter_is_400(raw: Raw):
    response = await raw("GET", "/users", params={"$filter": "displayName eq"})
    assert response.status_code == 400


# --- GET /users: $count, $search, $orderby ------------------------------------------------------------------


async def test_count_true_without_consistency_level_is_silently_ignored(raw: Raw):
    response = await raw("GET", "/users", params={"$count": "true", "$select": "id"})
    assert response.status_code == 200
    assert "@odata.count" not in response.json()
    assert len(response.json()["value"]) == len(U)


async def test_typed_count_with_consistency_level_returns_odata_count_on_the_first_page_only(
    tenant_env: TenantServer,
):
    users = graph_client(tenant_env).users
    first = await users.get(users_config(EVENTUAL, count=True, top=10, filter="userType eq 'Member'"))
    assert first.odata_count == len(U) - 1
    second = await users.with_url(first.odata_next_link).get(users_config(EVENTUAL))
    assert second.odata_count is None
    assert len(first.value) + len(second.value) == len(U) - 1


async def test_count_segment_needs_consistency_level(tenant_env: TenantServer, raw: Raw):
    plain = await raw("GET", "/users/$count")
    assert plain.status_code == 400
    assert error(plain)["message"] == "$count is not currently supported."
    config = RequestConfiguration(
        query_parameters=CountRequestBuilder.CountRequestBuilderGetQueryParameters(filter="department eq 'IT'")
    )
    config.headers.add("ConsistencyLevel", "eventual")
    assert await graph_client(tenant_env).users.count.get(config) == 2


async def test_search_needs_consistency_level_and_matches_word_prefixes(raw: Raw):
    params = {"$search": '"displayName:megan"', "$select": "id"}
    plain = await raw("GET", "/users", params=params)
    assert plain.status_code == 400
    assert "ConsistencyLevel: eventual" in error(plain)["message"]
    found = await raw("GET", "/users", params=params, headers=EVENTUAL)
    assert [u["id"] for u in found.json()["value"]] == [U["megan"]]


async def test_orderby_display_name_sorts_and_with_a_filter_needs_advanced_parameters(raw: Raw):
    ordered = await raw("GET", "/users", params={"$orderby": "displayName desc", "$select": "displayName"})
    names = [u["displayName"] for u in ordered.json()["value"]]
    assert names == sorted(names, reverse=True)
    mixed = await raw("GET", "/users", params={"$orderby": "displayName", "$filter": "department eq 'IT'"})
    assert mixed.status_code == 400
    assert error(mixed)["message"] == "Sorting not supported for current query."


# --- GET /users: $top and paging ----------------------------------------------------------------------------


async def test_top_must_be_between_1_and_999(raw: Raw):
    statuses = [(await raw("GET", "/users", params={"$top": top})).status_code for top in ("0", "1000", "999")]
    assert statuses == [400, 400, 200]


async def test_default_page_is_100_and_next_links_reach_every_user(tenant_env: TenantServer, raw: Raw):
    add_users(tenant_env, 120)
    body = (await raw("GET", "/users", params={"$select": "id"})).json()
    sizes, seen = [len(body["value"])], [u["id"] for u in body["value"]]
    while "@odata.nextLink" in body:
        body = (await raw("GET", body["@odata.nextLink"])).json()
        sizes.append(len(body["value"]))
        seen += [u["id"] for u in body["value"]]
    assert sizes == [100, 120 + len(U) - 100]
    assert sorted(seen) == sorted(tenant_env.state.users)


async def test_next_link_keeps_the_query_and_carries_an_opaque_skiptoken(raw: Raw):
    first = await raw("GET", "/users", params={"$top": "3", "$select": "id", "$filter": "department eq 'Operations'"})
    link = httpx.URL(first.json()["@odata.nextLink"])
    assert (link.params["$top"], link.params["$select"], link.params["$filter"]) == (
        "3",
        "id",
        "department eq 'Operations'",
    )
    assert not link.params["$skiptoken"].isdigit()
    second = await raw("GET", str(link))
    assert set(second.json()["value"][0]) == {"id"}
    assert {u["id"] for u in first.json()["value"]}.isdisjoint({u["id"] for u in second.json()["value"]})


async def test_a_forged_skiptoken_is_400(raw: Raw):
    forged = base64.urlsafe_b64encode(b"not json").decode()
    assert (await raw("GET", "/users", params={"$skiptoken": forged})).status_code == 400


# --- Manager ----------------------------------------------------------------------------------------------


async def test_typed_manager_get_returns_the_manager_as_a_user(tenant_env: TenantServer):
    manager = await graph_client(tenant_env).users.by_user_id(U["tom"]).manager.get()
    assert isinstance(manager, User)
    assert (manager.id, manager.display_name) == (U["megan"], "Megan Manager")


async def test_raw_manager_get_honours_select(raw: Raw):
    response = await raw("GET", f"/users/{U['tom']}/manager", params={"$select": "id,userPrincipalName"})
    assert response.json() == {
        "@odata.context": f"{GRAPH}/v1.0/$metadata#directoryObjects/$entity",
        "@odata.type": "#microsoft.graph.user",
        "id": U["megan"],
        "userPrincipalName": "megan@contoso.local",
    }


async def test_typed_manager_get_of_a_user_without_one_is_404(tenant_env: TenantServer):
    with pytest.raises(ODataError) as caught:
        await graph_client(tenant_env).users.by_user_id(U["dana"]).manager.get()
    assert (caught.value.response_status_code, caught.value.error.code) == (404, "Request_ResourceNotFound")


async def test_typed_put_manager_ref_answers_204_and_logs_a_set_manager_audit(tenant_env: TenantServer, raw: Raw):
    client = graph_client(tenant_env, client_id=register(tenant_env, WRITER))
    body = ReferenceUpdate(odata_id=f"{GRAPH}/v1.0/users/{U['dana']}")
    assert await client.users.by_user_id(U["nora"]).manager.ref.put(body) is None
    assert (await raw("GET", f"/users/{U['nora']}/manager")).json()["id"] == U["dana"]
    audits = await raw("GET", AUDITS, params={"$filter": f"targetResources/any(t: t/id eq '{U['nora']}')"})
    [audit] = audits.json()["value"]
    assert (audit["activityDisplayName"], audit["category"], audit["loggedByService"]) == (
        "Set manager",
        "UserManagement",
        "Core Directory",
    )
    assert audit["initiatedBy"]["app"]["appId"] == WRITER["appId"]
    changes = {p["displayName"]: p for p in audit["targetResources"][0]["modifiedProperties"]}
    assert changes["Manager.ObjectID"]["oldValue"] == f'"{U["megan"]}"'
    assert changes["Manager.ObjectID"]["newValue"] == f'"{U["dana"]}"'


async def test_put_manager_ref_needs_user_readwrite_all_and_changes_nothing_without_it(raw: Raw):
    response = await raw("PUT", f"/users/{U['nora']}/manager/$ref", ref(U["dana"], "users"))
    assert response.status_code == 403
    assert error(response)["code"] == "Authorization_RequestDenied"
    assert (await raw("GET", f"/users/{U['nora']}/manager")).json()["id"] == U["megan"]


async def test_put_manager_ref_validates_the_reference(writer: Raw):
    path = f"/users/{U['nora']}/manager/$ref"
    assert (await writer("PUT", path, {"@odata.id": "dana"})).status_code == 400
    assert (await writer("PUT", path, ref(U["nora"]))).status_code == 400  # not their own manager
    assert (await writer("PUT", path, ref(G["helpdesk"]))).status_code == 400  # a group cannot manage
    assert (await writer("PUT", path, ref("00000000-0000-4000-8000-999999999999"))).status_code == 404


async def test_delete_manager_ref_removes_the_manager_and_logs_remove_manager(writer: Raw):
    assert (await writer("DELETE", f"/users/{U['tom']}/manager/$ref")).status_code == 204
    assert (await writer("GET", f"/users/{U['tom']}/manager")).status_code == 404
    assert (await writer("DELETE", f"/users/{U['tom']}/manager/$ref")).status_code == 404
    audits = await writer("GET", AUDITS, params={"$filter": "activityDisplayName eq 'Remove manager'"})
    assert [a["targetResources"][0]["id"] for a in audits.json()["value"]] == [U["tom"]]


# --- Memberships ------------------------------------------------------------------------------------------


async def test_typed_transitive_member_of_returns_nested_groups_and_directory_roles(tenant_env: TenantServer):
    hank = await graph_client(tenant_env).users.by_user_id(U["hank"]).transitive_member_of.get()
    assert {(type(o), o.id) for o in hank.value} == {
        (Group, G["security_approvers"]),
        (Group, G["helpdesk"]),
        (DirectoryRole, R["auth_admin"]),
    }
    priya = await graph_client(tenant_env).users.by_user_id(U["priya"]).transitive_member_of.get()
    assert {o.id for o in priya.value} == {G["phone_staging"], G["all_staff"]}


async def test_raw_member_of_lists_direct_memberships_only(raw: Raw):
    response = await raw("GET", f"/users/{U['priya']}/memberOf")
    assert response.json()["@odata.context"] == f"{GRAPH}/v1.0/$metadata#directoryObjects"
    assert [o["id"] for o in response.json()["value"]] == [G["phone_staging"]]


async def test_raw_transitive_member_of_types_roles_and_selects_per_type(raw: Raw):
    params = {"$select": "id,displayName,roleTemplateId"}
    response = await raw("GET", f"/users/{U['alex']}/transitiveMemberOf", params=params)
    assert response.json()["value"] == [
        {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": R["global_admin"],
            "displayName": "Global Administrator",
            "roleTemplateId": "62e90394-69f5-4237-9190-012177145e10",
        }
    ]


async def test_typed_casts_keep_only_groups_or_only_directory_roles(tenant_env: TenantServer):
    memberships = graph_client(tenant_env).users.by_user_id(U["hank"]).transitive_member_of
    groups = await memberships.graph_group.get()
    roles = await memberships.graph_directory_role.get()
    assert {o.id for o in groups.value} == {G["security_approvers"], G["helpdesk"]}
    assert [(type(o), o.id) for o in roles.value] == [(DirectoryRole, R["auth_admin"])]


async def test_raw_cast_segment_filters_by_type_and_names_the_cast_set_in_the_context(raw: Raw):
    response = await raw("GET", f"/users/{U['hank']}/memberOf/microsoft.graph.directoryRole")
    assert response.json()["@odata.context"] == f"{GRAPH}/v1.0/$metadata#directoryRoles"
    assert [o["id"] for o in response.json()["value"]] == [R["auth_admin"]]
    groups = await raw("GET", f"/users/{U['alex']}/transitiveMemberOf/microsoft.graph.group")
    assert groups.json()["value"] == []


async def test_memberships_of_an_unknown_user_are_404(raw: Raw):
    response = await raw("GET", "/users/00000000-0000-4000-8000-999999999999/transitiveMemberOf")
    assert response.status_code == 404


# --- Groups and members -----------------------------------------------------------------------------------


async def test_typed_group_get_and_raw_context(tenant_env: TenantServer, raw: Raw):
    group = await graph_client(tenant_env).groups.by_group_id(G["helpdesk"]).get()
    assert (group.display_name, group.security_enabled) == ("Helpdesk TAP deliverers", True)
    response = await raw("GET", f"/groups/{G['helpdesk']}")
    assert response.json()["@odata.context"] == f"{GRAPH}/v1.0/$metadata#groups/$entity"
    assert "members" not in response.json()
    assert (await raw("GET", "/groups/11111111-0000-4000-8000-999999999999")).status_code == 404


async def test_typed_members_and_transitive_members_expand_nested_groups(tenant_env: TenantServer):
    group = graph_client(tenant_env).groups.by_group_id(G["all_staff"])
    direct = await group.members.get()
    assert {o.id for o in direct.value} == {G["phone_staging"], U["megan"], U["tom"]}
    nested = await group.transitive_members.graph_user.get()
    assert all(isinstance(o, User) for o in nested.value)
    assert {o.id for o in nested.value} == {U[k] for k in ("megan", "tom", "nora", "priya", "omar", "ivan")}


async def test_raw_user_cast_on_transitive_members_selects_user_properties_and_pages(raw: Raw):
    path = f"/groups/{G['all_staff']}/transitiveMembers/microsoft.graph.user"
    first = await raw("GET", path, params={"$select": "id,accountEnabled", "$top": "4"})
    body = first.json()
    assert body["@odata.context"] == f"{GRAPH}/v1.0/$metadata#users(id,accountEnabled)"
    assert all(set(u) == {"@odata.type", "id", "accountEnabled"} for u in body["value"])
    second = await raw("GET", body["@odata.nextLink"])
    assert len(body["value"]) + len(second.json()["value"]) == 6
    bad = await raw("GET", path, params={"$select": "id,shoeSize"})
    assert bad.status_code == 400


async def test_typed_member_add_answers_204_and_logs_add_member_to_group(tenant_env: TenantServer, raw: Raw):
    client = graph_client(tenant_env, client_id=register(tenant_env, WRITER))
    body = ReferenceCreate(odata_id=f"{GRAPH}/v1.0/directoryObjects/{U['nora']}")
    assert await client.groups.by_group_id(G["onboarding"]).members.ref.post(body) is None
    members = await raw("GET", f"/groups/{G['onboarding']}/members")
    assert [o["id"] for o in members.json()["value"]] == [U["nora"]]
    audits = await raw("GET", AUDITS, params={"$filter": "activityDisplayName eq 'Add member to group'"})
    [audit] = audits.json()["value"]
    assert audit["category"] == "GroupManagement"
    assert [t["id"] for t in audit["targetResources"]] == [U["nora"], G["onboarding"]]


async def test_adding_an_existing_member_is_400_already_exist(writer: Raw):
    response = await writer("POST", f"/groups/{G['helpdesk']}/members/$ref", ref(U["hank"]))
    assert response.status_code == 400
    assert error(response)["message"].startswith("One or more added object references already exist")


async def test_adding_an_unknown_object_is_404(writer: Raw):
    path = f"/groups/{G['onboarding']}/members/$ref"
    response = await writer("POST", path, ref("00000000-0000-4000-8000-00000000beef"))
    assert response.status_code == 404
    assert error(response)["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"@odata.id": U["nora"]},
        {"@odata.id": f"{GRAPH}/v1.0/directoryObjects/not-a-guid"},
        {"@odata.id": f"{GRAPH}/v1.0/me/{U['nora']}"},
        {"@odata.id": f"https://evil.example/v1.0/directoryObjects/{U['nora']}"},
        {"@odata.id": f"{GRAPH}/v1.0/directoryObjects/{U['nora']}", "extra": 1},
    ],
    ids=["empty", "bare-id", "not-a-guid", "wrong-segment", "foreign-host", "extra-property"],
)
async def test_a_malformed_member_reference_is_400_and_adds_nobody(writer: Raw, body: dict[str, Any]):
    response = await writer("POST", f"/groups/{G['onboarding']}/members/$ref", body)
    assert response.status_code == 400
    assert (await writer("GET", f"/groups/{G['onboarding']}/members")).json()["value"] == []


async def test_a_users_reference_is_accepted_like_a_directory_objects_one(writer: Raw):
    response = await writer("POST", f"/groups/{G['onboarding']}/members/$ref", ref(U["tom"], "users"))
    assert response.status_code == 204


async def test_typed_member_remove_answers_204_and_a_second_remove_is_404(tenant_env: TenantServer, raw: Raw):
    client = graph_client(tenant_env, client_id=register(tenant_env, WRITER))
    member = client.groups.by_group_id(G["helpdesk"]).members.by_directory_object_id(U["hank"])
    assert await member.ref.delete() is None
    assert G["helpdesk"] not in {o["id"] for o in (await raw("GET", f"/users/{U['hank']}/memberOf")).json()["value"]}
    with pytest.raises(ODataError) as caught:
        await member.ref.delete()
    assert caught.value.response_status_code == 404


async def test_member_writes_need_groupmember_readwrite_all(raw: Raw):
    add = await raw("POST", f"/groups/{G['onboarding']}/members/$ref", ref(U["nora"]))
    remove = await raw("DELETE", f"/groups/{G['helpdesk']}/members/{U['hank']}/$ref")
    assert (add.status_code, remove.status_code) == (403, 403)
    assert (await raw("GET", f"/groups/{G['helpdesk']}/members")).json()["value"][0]["id"] == U["hank"]


# --- Sessions ---------------------------------------------------------------------------------------------


async def test_typed_revoke_sign_in_sessions_returns_true_and_records_the_tenant_time(tenant_env: TenantServer):
    tenant_env.state.clock_offset = timedelta(days=3)
    result = await graph_client(tenant_env).users.by_user_id(U["tom"]).revoke_sign_in_sessions.post()
    assert result.value is True
    stamp = tenant_env.state.users[U["tom"]]["signInSessionsValidFromDateTime"]
    assert stamp[:10] == (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")


async def test_raw_revoke_answers_200_with_the_documented_body_and_the_user_shows_the_new_time(raw: Raw):
    response = await raw("POST", f"/users/{U['tom']}/revokeSignInSessions")
    assert (response.status_code, response.json()) == (
        200,
        {"@odata.context": f"{GRAPH}/v1.0/$metadata#Edm.Boolean", "value": True},
    )
    user = await raw("GET", f"/users/{U['tom']}", params={"$select": "signInSessionsValidFromDateTime"})
    assert user.json()["signInSessionsValidFromDateTime"]


async def test_revoke_needs_a_revoke_permission_and_an_existing_user(tenant_env: TenantServer, raw: Raw):
    denied = await Raw(tenant_env, LIMITED)("POST", f"/users/{U['tom']}/revokeSignInSessions")
    assert denied.status_code == 403
    assert "signInSessionsValidFromDateTime" not in tenant_env.state.users[U["tom"]]
    unknown = await raw("POST", "/users/00000000-0000-4000-8000-999999999999/revokeSignInSessions")
    assert unknown.status_code == 404


# --- Registration report ----------------------------------------------------------------------------------


def registration_config(**query: Any) -> RequestConfiguration:
    params = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(**query)
    return RequestConfiguration(query_parameters=params)


async def test_typed_registration_details_page_through_every_user(tenant_env: TenantServer):
    details = graph_client(tenant_env).reports.authentication_methods.user_registration_details
    page = await details.get(registration_config(top=5))
    rows = list(page.value)
    while page.odata_next_link:
        page = await details.with_url(page.odata_next_link).get()
        rows += page.value
    assert sorted(r.id for r in rows) == sorted(U.values())
    tom = next(r for r in rows if r.id == U["tom"])
    assert tom.methods_registered == [
        "mobilePhone",
        "alternateMobilePhone",
        "officePhone",
        "microsoftAuthenticatorPush",
        "softwareOneTimePasscode",
        "fido2",
        "windowsHelloForBusiness",
        "email",
        "macOsSecureEnclaveKey",
        "hardwareOneTimePasscode",
    ]  # the expired pass is not registered


async def test_raw_registration_detail_of_one_user_has_the_documented_shape(raw: Raw):
    response = await raw("GET", f"{REGISTRATION}/{U['priya']}")
    body = response.json()
    assert body.pop("@odata.context") == f"{GRAPH}/v1.0/$metadata#{REGISTRATION[1:]}/$entity"
    assert body.pop("lastUpdatedDateTime").endswith("Z")
    assert body == {
        "id": U["priya"],
        "userPrincipalName": "priya@contoso.local",
        "userDisplayName": "Priya Phoneonly",
        "userType": "member",
        "isAdmin": False,
        "isSsprRegistered": True,
        "isSsprEnabled": False,
        "isSsprCapable": False,
        "isMfaRegistered": True,
        "isMfaCapable": True,
        "isPasswordlessCapable": False,
        "methodsRegistered": ["mobilePhone"],
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": ["sms"],
        "userPreferredMethodForSecondaryAuthentication": "sms",
    }


async def test_beta_registration_details_also_carry_the_default_mfa_method(raw: Raw):
    beta = await raw("GET", f"{REGISTRATION}/{U['megan']}", version="beta")
    assert beta.json()["defaultMfaMethod"] == "microsoftAuthenticatorPush"
    assert beta.json()["userPreferredMethodForSecondaryAuthentication"] == "push"


async def test_registration_flags_for_admins_guests_and_passwordless_users(raw: Raw):
    response = await raw("GET", REGISTRATION)
    rows = {r["id"]: r for r in response.json()["value"]}
    assert (rows[U["alex"]]["isAdmin"], rows[U["alex"]]["isSsprEnabled"]) == (True, True)
    assert rows[U["gus"]]["userType"] == "guest"
    assert rows[U["bea"]]["isPasswordlessCapable"] is True
    assert rows[U["nora"]]["methodsRegistered"] == []
    assert rows[U["nora"]]["userPreferredMethodForSecondaryAuthentication"] == "none"


async def test_typed_registration_filter_on_is_mfa_registered(tenant_env: TenantServer):
    details = graph_client(tenant_env).reports.authentication_methods.user_registration_details
    result = await details.get(registration_config(filter="isMfaRegistered eq false"))
    assert {r.id for r in result.value} == {U["nora"], U["omar"], U["ivan"]}


async def test_registration_filter_on_user_type_and_methods_registered_any(raw: Raw):
    guests = await raw("GET", REGISTRATION, params={"$filter": "userType eq 'guest'"})
    assert [r["id"] for r in guests.json()["value"]] == [U["gus"]]
    text = "methodsRegistered/any(m: m eq 'fido2') and isAdmin eq false"
    keys = await raw("GET", REGISTRATION, params={"$filter": text})
    assert {r["id"] for r in keys.json()["value"]} == {U["bea"], U["tom"], U["sam"]}


async def test_registration_filters_outside_the_documented_ones_are_400(raw: Raw):
    for text in ("isMfaRegistered ne true", "lastUpdatedDateTime ge 2025-01-01T00:00:00Z"):
        assert (await raw("GET", REGISTRATION, params={"$filter": text})).status_code == 400


async def test_a_pass_created_through_graph_shows_up_as_registered(raw: Raw):
    created = await raw("POST", f"/users/{U['nora']}/authentication/temporaryAccessPassMethods", {})
    assert created.status_code == 201
    response = await raw("GET", f"{REGISTRATION}/{U['nora']}")
    assert response.json()["methodsRegistered"] == ["temporaryAccessPass"]
    assert response.json()["isMfaRegistered"] is False  # a pass is not an MFA method


async def test_registration_report_needs_audit_log_or_authentication_method_read(tenant_env: TenantServer):
    denied = await Raw(tenant_env, LIMITED)("GET", REGISTRATION)
    assert denied.status_code == 403
    register(tenant_env, METHOD_READER)
    allowed = await Raw(tenant_env, token=app_token(tenant_env.state, METHOD_READER, GRAPH))("GET", REGISTRATION)
    assert allowed.status_code == 200


# --- Directory audits -------------------------------------------------------------------------------------


def seed_audits(tenant: TenantServer) -> None:
    """Two newer records through the tenant's own record_audit, as other modules write them."""
    state = tenant.state
    claims = {"appid": F.APP["func"][0], "idtyp": "app", "oid": F.APP["func"][1]}
    record_audit(state, "Update user", state.users[U["tom"]], [("Department", "Ops", "IT")], claims)
    state.clock_offset = timedelta(minutes=5)
    group = state.groups[G["onboarding"]]
    targets = [(state.users[U["tom"]], "user", []), (group, "group", [])]
    record_audit(state, "Add member to group", targets, [], claims, category="GroupManagement")


async def test_typed_directory_audits_filtered_by_activity_target_and_time(tenant_env: TenantServer):
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        f"activityDisplayName eq 'Set manager' and targetResources/any(t: t/id eq '{U['priya']}') "
        f"and activityDateTime ge {since}"
    )
    query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(filter=text)
    result = await graph_client(tenant_env).audit_logs.directory_audits.get(
        RequestConfiguration(query_parameters=query)
    )
    assert [a.id for a in result.value] == ["Directory_0001"]
    assert result.value[0].target_resources[0].user_principal_name == "priya@contoso.local"


async def test_directory_audits_come_newest_first_and_page_with_top(tenant_env: TenantServer, raw: Raw):
    seed_audits(tenant_env)
    first = await raw("GET", AUDITS, params={"$top": "2"})
    body = first.json()
    assert body["@odata.context"] == f"{GRAPH}/v1.0/$metadata#auditLogs/directoryAudits"
    assert [a["activityDisplayName"] for a in body["value"]] == ["Add member to group", "Update user"]
    rest = await raw("GET", body["@odata.nextLink"])
    assert [a["id"] for a in rest.json()["value"]] == ["Directory_0001"]


async def test_directory_audit_filters_on_category_service_prefix_and_time_window(tenant_env: TenantServer, raw: Raw):
    seed_audits(tenant_env)
    now = tenant_env.state.now()

    async def ids(text: str) -> list[str]:
        response = await raw("GET", AUDITS, params={"$filter": text})
        assert response.status_code == 200, response.text
        return [a["activityDisplayName"] for a in response.json()["value"]]

    assert await ids("category eq 'UserManagement' and loggedByService eq 'Core Directory'") == [
        "Update user",
        "Set manager",
    ]
    assert await ids("startswith(activityDisplayName,'Add')") == ["Add member to group"]
    window = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(f"activityDateTime ge {window} and activityDateTime le {before}") == ["Update user"]
    assert await ids(f"initiatedBy/app/appId eq '{F.APP['func'][0]}'") == ["Add member to group", "Update user"]


async def test_record_audit_writes_graphs_directory_audit_shape(tenant_env: TenantServer, raw: Raw):
    seed_audits(tenant_env)
    response = await raw("GET", AUDITS, params={"$filter": "activityDisplayName eq 'Update user'"})
    [audit] = response.json()["value"]
    assert audit["initiatedBy"] == {
        "app": {
            "appId": F.APP["func"][0],
            "displayName": "mfa-reset-func",
            "servicePrincipalId": F.APP["func"][1],
            "servicePrincipalName": "mfa-reset-func",
        },
        "user": None,
    }
    [target] = audit["targetResources"]
    assert (target["type"], target["userPrincipalName"]) == ("User", "tom@contoso.local")
    assert target["modifiedProperties"] == [{"displayName": "Department", "oldValue": '"Ops"', "newValue": '"IT"'}]
    one = await raw("GET", f"{AUDITS}/{audit['id']}")
    assert one.json()["id"] == audit["id"]


async def test_directory_audit_filters_graph_does_not_support_are_400(raw: Raw):
    for text in ("activityDisplayName ne 'Set manager'", "resultReason eq ''"):
        response = await raw("GET", AUDITS, params={"$filter": text})
        assert response.status_code == 400
        assert error(response)["code"] == "Request_UnsupportedQuery"


async def test_directory_audits_need_audit_log_and_directory_read(tenant_env: TenantServer):
    register(tenant_env, AUDIT_ONLY)
    audit_only = Raw(tenant_env, token=app_token(tenant_env.state, AUDIT_ONLY, GRAPH))
    assert (await audit_only("GET", AUDITS)).status_code == 403
    client = graph_client(tenant_env, client_id=LIMITED)
    with pytest.raises(ODataError) as caught:
        await client.audit_logs.directory_audits.get()
    assert (caught.value.response_status_code, caught.value.error.code) == (403, "Authorization_RequestDenied")


async def test_an_unknown_audit_id_is_404(raw: Raw):
    assert (await raw("GET", f"{AUDITS}/Directory_nope")).status_code == 404


# --- Permissions across the reads -------------------------------------------------------------------------

LIMITED_DENIED = [
    ("GET", f"/groups/{G['helpdesk']}"),
    ("GET", f"/groups/{G['helpdesk']}/members"),
    ("GET", f"/groups/{G['all_staff']}/transitiveMembers/microsoft.graph.user"),
    ("GET", REGISTRATION),
    ("GET", AUDITS),
]


@pytest.mark.parametrize(("method", "path"), LIMITED_DENIED, ids=[p for _, p in LIMITED_DENIED])
async def test_an_identity_with_only_user_read_all_is_403_on_group_report_and_audit_reads(
    tenant_env: TenantServer, method: str, path: str
):
    response = await Raw(tenant_env, LIMITED)(method, path)
    assert response.status_code == 403
    assert error(response)["code"] == "Authorization_RequestDenied"


async def test_user_read_all_is_enough_for_users_manager_and_memberships(tenant_env: TenantServer):
    limited = Raw(tenant_env, LIMITED)
    paths = ["/users", f"/users/{U['tom']}", f"/users/{U['tom']}/manager", f"/users/{U['tom']}/transitiveMemberOf"]
    assert [(await limited("GET", p)).status_code for p in paths] == [200, 200, 200, 200]
