"""Conformance of the local tenant's directory endpoints with Microsoft Graph, driven only through real clients:
msgraph-sdk typed calls and raw httpx with a token from azure-identity's ManagedIdentityCredential (or one the
tenant issues for an app defined here). Sources: https://learn.microsoft.com/graph/api/user-get, user-list,
https://learn.microsoft.com/graph/aad-advanced-queries, user-list-manager, user-post-manager,
user-list-transitivememberof, group-post-members, group-delete-members, user-revokesigninsessions,
authenticationmethodsroot-list-userregistrationdetails, directoryaudit-list, https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import re
import uuid
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
from msgraph.generated.models.user import User
from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (  # noqa: E501
    UserRegistrationDetailsRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from local.tenant import TenantServer
from local.tenant.auth import app_token
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
# An app registered here (not in the fixture) that may write users and group members and read audits.
WRITER = {
    "appId": "c0ffee00-0000-4000-8000-000000000001",
    "servicePrincipalId": "c0ffee00-0000-4000-8000-0000000000a1",
    "displayName": "conformance-writer",
    "kind": "managedIdentity",
    # directoryaudit-list asks for AuditLog.Read.All and Directory.Read.All together.
    "graphRoles": ["User.ReadWrite.All", "GroupMember.ReadWrite.All", "AuditLog.Read.All", "Directory.Read.All"],
}


class Raw:
    """httpx against the tenant's Graph; the bearer comes from ManagedIdentityCredential unless given."""

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
        authenticated: bool = True,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if authenticated:
            sent["Authorization"] = f"Bearer {await self.token()}"
        async with httpx.AsyncClient(base_url=self.tenant.graph_url) as client:
            return await client.request(method, path, json=body, params=params, headers=sent)

    async def pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every page of a collection, following @odata.nextLink until there is none."""
        headers = {"Authorization": f"Bearer {await self.token()}"}
        bodies = []
        async with httpx.AsyncClient() as client:
            response = await client.get(self.tenant.graph_url + path, params=params, headers=headers)
            while True:
                assert response.status_code == 200, response.text
                bodies.append(response.json())
                link = bodies[-1].get("@odata.nextLink")
                if not link:
                    return bodies
                response = await client.get(link, headers=headers)


@pytest.fixture
def raw(tenant_env: TenantServer) -> Raw:
    return Raw(tenant_env)


@pytest.fixture
def writer(tenant_env: TenantServer) -> Raw:
    """The WRITER app: known to the tenant as a managed identity, calling with a token the tenant issues for it."""
    tenant_env.state.applications[WRITER["appId"]] = dict(WRITER)
    return Raw(tenant_env, token=app_token(tenant_env.state, WRITER, GRAPH))


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"{GRAPH}/v1.0/directoryObjects/{object_id}"}


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


def user_query(**values: Any) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**values))


# --- GET /users/{id} ------------------------------------------------------------------------------------


async def test_typed_user_get_fills_the_default_properties_and_leaves_others_unset(tenant_env: TenantServer):
    user = await graph_client(tenant_env).users.by_user_id(U["tom"]).get()
    assert (user.id, user.display_name, user.job_title) == (U["tom"], "Tom Target", "Engineer")
    assert user.user_principal_name == "tom@contoso.local"
    assert user.business_phones == ["+1 425 555 0199"]
    assert user.department is None  # not in the default property set
    assert user.account_enabled is None


async def test_raw_user_get_returns_exactly_the_default_property_set(raw: Raw):
    response = await raw("GET", f"/users/{U['tom']}")
    assert response.status_code == 200
    body = response.json()
    assert body.pop("@odata.context") == f"{GRAPH}/v1.0/$metadata#users/$entity"
    assert set(body) == DEFAULT_USER_KEYS


async def test_a_user_is_also_found_by_user_principal_name(raw: Raw):
    response = await raw("GET", "/users/Tom@contoso.local")
    assert response.json()["id"] == U["tom"]


async def test_typed_select_returns_only_the_named_properties(tenant_env: TenantServer):
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "department"])
    user = await graph_client(tenant_env).users.by_user_id(U["hank"]).get(RequestConfiguration(query_parameters=query))
    assert (user.id, user.department) == (U["hank"], "IT")
    assert user.display_name is None


async def test_raw_select_returns_only_the_named_properties(raw: Raw):
    response = await raw("GET", f"/users/{U['hank']}", params={"$select": "accountEnabled,department"})
    assert response.status_code == 200
    body = response.json()
    body.pop("@odata.context")
    assert body == {"accountEnabled": True, "department": "IT"}


async def test_select_of_an_unknown_property_is_400(raw: Raw):
    response = await raw("GET", f"/users/{U['tom']}", params={"$select": "displayName,shoeSize"})
    assert response.status_code == 400
    assert "shoeSize" in error(response)["message"]


async def test_typed_get_of_an_unknown_user_raises_404_with_graphs_error_envelope(tenant_env: TenantServer):
    with pytest.raises(ODataError) as caught:
        await graph_client(tenant_env).users.by_user_id(str(uuid.uuid4())).get()
    assert caught.value.response_status_code == 404
    assert caught.value.error.code == "Request_ResourceNotFound"
    assert caught.value.error.inner_error.request_id


async def test_raw_get_of_an_unknown_user_is_404_with_request_id_date_and_client_request_id(raw: Raw):
    missing = str(uuid.uuid4())
    client_request_id = str(uuid.uuid4())
    response = await raw("GET", f"/users/{missing}", headers={"client-request-id": client_request_id})
    assert response.status_code == 404
    assert set(response.json()) == {"error"}
    body = error(response)
    assert body["code"] == "Request_ResourceNotFound"
    assert missing in body["message"]
    inner = body["innerError"]
    uuid.UUID(inner["request-id"])
    assert inner["client-request-id"] == client_request_id
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", inner["date"])


# --- GET /users -----------------------------------------------------------------------------------------


async def test_typed_list_with_filter_returns_only_matching_users(tenant_env: TenantServer):
    result = await graph_client(tenant_env).users.get(user_query(filter="department eq 'IT'"))
    assert sorted(u.id for u in result.value) == sorted([U["hank"], U["sam"]])


async def test_raw_list_with_startswith_filter(raw: Raw):
    response = await raw("GET", "/users", params={"$filter": "startswith(displayName,'d')", "$select": "id"})
    assert sorted(u["id"] for u in response.json()["value"]) == sorted([U["dana"], U["dee"]])


async def test_top_pages_through_every_user_via_next_link(raw: Raw):
    bodies = await raw.pages("/users", {"$top": "5", "$select": "id"})
    assert [len(b["value"]) for b in bodies] == [5, 5, 4]
    ids = [u["id"] for b in bodies for u in b["value"]]
    assert sorted(ids) == sorted(U.values())


async def test_typed_top_gives_a_next_link_the_client_can_follow(tenant_env: TenantServer):
    users = graph_client(tenant_env).users
    first = await users.get(user_query(top=10))
    assert len(first.value) == 10
    assert first.odata_next_link
    second = await users.with_url(first.odata_next_link).get()
    assert len(second.value) == 4
    assert second.odata_next_link is None


async def test_count_without_consistency_level_is_ignored(raw: Raw):
    """aad-advanced-queries: without ConsistencyLevel, $count=true is silently ignored (no @odata.count)."""
    response = await raw("GET", "/users", params={"$count": "true"})
    assert response.status_code == 200
    assert "@odata.count" not in response.json()


async def test_typed_count_with_consistency_level_eventual_returns_odata_count(tenant_env: TenantServer):
    config = user_query(count=True, filter="userType eq 'Member'", select=["id"])
    config.headers.add("ConsistencyLevel", "eventual")
    result = await graph_client(tenant_env).users.get(config)
    assert result.odata_count == len(U) - 1  # everyone but Gus the guest
    assert U["gus"] not in {u.id for u in result.value}


async def test_ne_null_filter_needs_the_advanced_query_header_and_count(raw: Raw):
    params = {"$filter": "jobTitle ne null", "$select": "id"}
    plain = await raw("GET", "/users", params=params)
    assert plain.status_code == 400
    assert error(plain)["code"] == "Request_UnsupportedQuery"
    advanced = await raw("GET", "/users", params={**params, "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert advanced.status_code == 200
    with_title = {"alex", "bea", "megan", "tom", "dana", "hank", "sam"}
    assert {u["id"] for u in advanced.json()["value"]} == {U[k] for k in with_title}
    assert advanced.json()["@odata.count"] == len(with_title)


# --- Manager --------------------------------------------------------------------------------------------


async def test_typed_manager_get_returns_the_manager_as_a_user(tenant_env: TenantServer):
    manager = await graph_client(tenant_env).users.by_user_id(U["tom"]).manager.get()
    assert isinstance(manager, User)
    assert (manager.id, manager.display_name) == (U["megan"], "Megan Manager")


async def test_raw_manager_get_is_404_when_the_user_has_none(raw: Raw):
    response = await raw("GET", f"/users/{U['dana']}/manager")
    assert response.status_code == 404
    assert error(response)["code"] == "Request_ResourceNotFound"


async def test_put_manager_ref_with_user_readwrite_sets_the_manager(writer: Raw, raw: Raw):
    response = await writer("PUT", f"/users/{U['nora']}/manager/$ref", ref(U["dana"]))
    assert response.status_code == 204
    assert (await raw("GET", f"/users/{U['nora']}/manager")).json()["id"] == U["dana"]


async def test_put_manager_ref_appends_a_set_manager_directory_audit(writer: Raw):
    await writer("PUT", f"/users/{U['nora']}/manager/$ref", ref(U["dana"]))
    response = await writer(
        "GET",
        "/auditLogs/directoryAudits",
        params={"$filter": f"activityDisplayName eq 'Set manager' and targetResources/any(t: t/id eq '{U['nora']}')"},
    )
    audits = [
        a for a in response.json()["value"] if (a["initiatedBy"].get("app") or {}).get("appId") == WRITER["appId"]
    ]
    assert len(audits) == 1
    audit = audits[0]
    changes = {c["displayName"]: c for c in audit["targetResources"][0]["modifiedProperties"]}
    change = changes["Manager.ObjectID"]
    assert U["megan"] in (change["oldValue"] or "")
    assert U["dana"] in change["newValue"]


# --- Memberships ----------------------------------------------------------------------------------------


async def test_typed_transitive_member_of_returns_groups_and_directory_roles(tenant_env: TenantServer):
    result = await graph_client(tenant_env).users.by_user_id(U["hank"]).transitive_member_of.get()
    found = {(type(o), o.id) for o in result.value}
    assert found == {
        (Group, G["security_approvers"]),
        (Group, G["helpdesk"]),
        (DirectoryRole, R["auth_admin"]),
    }


async def test_raw_transitive_member_of_includes_groups_reached_through_nesting(raw: Raw):
    direct = await raw("GET", f"/users/{U['priya']}/memberOf")
    assert [o["id"] for o in direct.json()["value"]] == [G["phone_staging"]]
    transitive = await raw("GET", f"/users/{U['priya']}/transitiveMemberOf")
    assert {o["id"] for o in transitive.json()["value"]} == {G["phone_staging"], G["all_staff"]}


async def test_typed_group_cast_keeps_only_groups(tenant_env: TenantServer):
    result = await graph_client(tenant_env).users.by_user_id(U["hank"]).transitive_member_of.graph_group.get()
    assert all(isinstance(o, Group) for o in result.value)
    assert {o.id for o in result.value} == {G["security_approvers"], G["helpdesk"]}


async def test_raw_group_cast_keeps_only_groups(raw: Raw):
    response = await raw("GET", f"/users/{U['alex']}/transitiveMemberOf/microsoft.graph.group")
    assert response.status_code == 200
    assert response.json()["value"] == []  # Alex is only in the Global Administrator role
    roles = await raw("GET", f"/users/{U['alex']}/transitiveMemberOf/microsoft.graph.directoryRole")
    assert [o["id"] for o in roles.json()["value"]] == [R["global_admin"]]


async def test_typed_member_add_answers_204_and_the_user_becomes_a_member(tenant_env: TenantServer, raw: Raw):
    tenant_env.state.applications[WRITER["appId"]] = dict(WRITER)
    client = graph_client(tenant_env, client_id=WRITER["appId"])
    result = await client.groups.by_group_id(G["onboarding"]).members.ref.post(
        ReferenceCreate(odata_id=f"{GRAPH}/v1.0/directoryObjects/{U['nora']}")
    )
    assert result is None  # 204 No Content
    members = await raw("GET", f"/users/{U['nora']}/memberOf")
    assert G["onboarding"] in {o["id"] for o in members.json()["value"]}


async def test_raw_member_add_answers_204(writer: Raw):
    response = await writer("POST", f"/groups/{G['onboarding']}/members/$ref", ref(U["nora"]))
    assert response.status_code == 204
    assert response.content == b""


async def test_adding_an_existing_member_again_is_400(writer: Raw):
    assert (await writer("POST", f"/groups/{G['helpdesk']}/members/$ref", ref(U["hank"]))).status_code == 400
    first = await writer("POST", f"/groups/{G['onboarding']}/members/$ref", ref(U["nora"]))
    second = await writer("POST", f"/groups/{G['onboarding']}/members/$ref", ref(U["nora"]))
    assert (first.status_code, second.status_code) == (204, 400)
    assert "already exist" in error(second)["message"]


async def test_typed_member_remove_answers_204_and_the_membership_goes(tenant_env: TenantServer, raw: Raw):
    tenant_env.state.applications[WRITER["appId"]] = dict(WRITER)
    client = graph_client(tenant_env, client_id=WRITER["appId"])
    members = client.groups.by_group_id(G["helpdesk"]).members
    assert await members.by_directory_object_id(U["hank"]).ref.delete() is None
    hank = await raw("GET", f"/users/{U['hank']}/memberOf")
    assert G["helpdesk"] not in {o["id"] for o in hank.json()["value"]}


async def test_raw_member_remove_answers_204(writer: Raw):
    response = await writer("DELETE", f"/groups/{G['security_approvers']}/members/{U['sam']}/$ref")
    assert response.status_code == 204


async def test_removing_a_non_member_is_404(writer: Raw):
    response = await writer("DELETE", f"/groups/{G['helpdesk']}/members/{U['nora']}/$ref")
    assert response.status_code == 404
    assert error(response)["code"] == "Request_ResourceNotFound"


# --- Sessions -------------------------------------------------------------------------------------------


async def test_typed_revoke_sign_in_sessions_returns_value_true(tenant_env: TenantServer):
    result = await graph_client(tenant_env).users.by_user_id(U["tom"]).revoke_sign_in_sessions.post()
    assert result.value is True


async def test_raw_revoke_sign_in_sessions_answers_200_value_true_and_moves_the_valid_from_time(raw: Raw):
    response = await raw("POST", f"/users/{U['tom']}/revokeSignInSessions")
    assert response.status_code == 200
    assert response.json()["value"] is True
    user = await raw("GET", f"/users/{U['tom']}", params={"$select": "signInSessionsValidFromDateTime"})
    assert user.json()["signInSessionsValidFromDateTime"]


# --- Registration report --------------------------------------------------------------------------------


async def test_registration_details_page_through_every_user(raw: Raw):
    bodies = await raw.pages("/reports/authenticationMethods/userRegistrationDetails", {"$top": "4"})
    assert len(bodies) == 4
    ids = [d["id"] for b in bodies for d in b["value"]]
    assert sorted(ids) == sorted(U.values())


async def test_typed_registration_details_filtered_by_is_mfa_registered(tenant_env: TenantServer):
    query = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
        filter="isMfaRegistered eq false"
    )
    details = graph_client(tenant_env).reports.authentication_methods.user_registration_details
    result = await details.get(RequestConfiguration(query_parameters=query))
    assert {d.id for d in result.value} == {U["nora"], U["omar"], U["ivan"]}
    assert all(d.methods_registered == [] for d in result.value)


async def test_raw_registration_details_report_methods_and_admins(raw: Raw):
    response = await raw(
        "GET", "/reports/authenticationMethods/userRegistrationDetails", params={"$filter": "isMfaRegistered eq true"}
    )
    by_id = {d["id"]: d for d in response.json()["value"]}
    assert U["nora"] not in by_id
    assert by_id[U["priya"]]["methodsRegistered"] == ["mobilePhone"]
    assert by_id[U["hank"]]["isAdmin"] is True
    assert by_id[U["priya"]]["isAdmin"] is False


# --- Directory audits -----------------------------------------------------------------------------------


async def test_typed_directory_audits_filtered_by_activity_target_and_time(tenant_env: TenantServer):
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
        filter=(
            f"activityDisplayName eq 'Set manager' and targetResources/any(t: t/id eq '{U['priya']}') "
            f"and activityDateTime ge {since}"
        )
    )
    result = await graph_client(tenant_env).audit_logs.directory_audits.get(
        RequestConfiguration(query_parameters=query)
    )
    assert [a.id for a in result.value] == ["Directory_0001"]
    assert result.value[0].target_resources[0].user_principal_name == "priya@contoso.local"


async def test_directory_audits_after_a_later_time_exclude_older_entries(raw: Raw):
    later = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = await raw("GET", "/auditLogs/directoryAudits", params={"$filter": f"activityDateTime ge {later}"})
    assert response.status_code == 200
    assert "Directory_0001" not in {a["id"] for a in response.json()["value"]}


async def test_directory_audits_filtered_by_another_target_are_empty(raw: Raw):
    response = await raw(
        "GET", "/auditLogs/directoryAudits", params={"$filter": f"targetResources/any(t: t/id eq '{U['tom']}')"}
    )
    assert response.json()["value"] == []


# --- Permissions and authentication ---------------------------------------------------------------------

GUARDED = [
    ("GET", "/groups/{g}", None),
    ("POST", "/groups/{g}/members/$ref", ref(U["nora"])),
    ("DELETE", "/groups/{g}/members/{hank}/$ref", None),
    ("POST", "/users/{tom}/revokeSignInSessions", None),
    ("PUT", "/users/{tom}/manager/$ref", ref(U["dana"])),
    ("GET", "/reports/authenticationMethods/userRegistrationDetails", None),
    ("GET", "/auditLogs/directoryAudits", None),
    ("GET", "/users/{tom}/authentication/methods", None),
    ("DELETE", "/users/{tom}/authentication/fido2Methods/" + F.oid("44444444", 4), None),
    ("POST", "/users/{nora}/authentication/temporaryAccessPassMethods", {}),
    ("GET", "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", None),
]


def _path(template: str) -> str:
    return template.format(g=G["helpdesk"], hank=U["hank"], tom=U["tom"], nora=U["nora"])


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED])
async def test_an_identity_with_only_user_read_all_gets_403_authorization_request_denied(
    tenant_env: TenantServer, method: str, path: str, body: Any
):
    response = await Raw(tenant_env, LIMITED)(method, _path(path), body)
    assert response.status_code == 403
    assert error(response)["code"] == "Authorization_RequestDenied"


async def test_a_denied_write_changes_nothing(tenant_env: TenantServer, raw: Raw):
    await Raw(tenant_env, LIMITED)("DELETE", f"/groups/{G['helpdesk']}/members/{U['hank']}/$ref")
    hank = await raw("GET", f"/users/{U['hank']}/memberOf")
    assert G["helpdesk"] in {o["id"] for o in hank.json()["value"]}


async def test_typed_call_without_the_permission_raises_odata_error_403(tenant_env: TenantServer):
    client = graph_client(tenant_env, client_id=LIMITED)
    with pytest.raises(ODataError) as caught:
        await client.audit_logs.directory_audits.get()
    assert caught.value.response_status_code == 403
    assert caught.value.error.code == "Authorization_RequestDenied"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/users/{tom}"), ("GET", "/users"), ("POST", "/users/{tom}/revokeSignInSessions"), ("GET", "/groups/{g}")],
)
async def test_a_call_without_a_token_is_401_invalid_authentication_token(raw: Raw, method: str, path: str):
    response = await raw(method, _path(path), authenticated=False)
    assert response.status_code == 401
    assert error(response)["code"] == "InvalidAuthenticationToken"


async def test_a_token_for_another_audience_is_401(tenant_env: TenantServer):
    token = app_token(tenant_env.state, {**WRITER, "resourceRoles": {}}, "api://somewhere-else")
    response = await Raw(tenant_env, token=token)("GET", f"/users/{U['tom']}")
    assert response.status_code == 401
