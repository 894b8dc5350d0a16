"""The local tenant's app registration endpoints enforce Graph's documented shapes, permissions and conflicts."""

from __future__ import annotations

import pytest

from graph.errors import Forbidden, GraphCallError
from tests.provision.conftest import OPERATOR, tenant_without
from tests.provision.test_tenant_governance import call

APP = {"displayName": "callout", "identifierUris": ["api://mfa-reset-extension"], "signInAudience": "AzureADMyOrg"}
FIC = {
    "name": "function-identity",
    "issuer": "https://login.microsoftonline.com/tenant/v2.0",
    "subject": "5e0b0000-0000-4000-8000-000000000001",
    "audiences": ["api://AzureADTokenExchange"],
}


def _status(tenant, method: str, path: str, **kwargs) -> tuple[int, str]:
    with pytest.raises(GraphCallError) as error:
        call(tenant, method, path, **kwargs)
    return error.value.status, error.value.message


def test_created_application_is_found_by_identifier_uri_app_id_and_display_name(empty):
    created = call(empty, "POST", "/applications", body=APP)
    for clause in (
        "identifierUris/any(x:x eq 'api://mfa-reset-extension')",
        f"appId eq '{created['appId']}'",
        "displayName eq 'callout'",
    ):
        assert [a["id"] for a in call(empty, "GET", "/applications", query={"$filter": clause})["value"]] == [
            created["id"]
        ]
    assert call(empty, "GET", "/applications", query={"$filter": "displayName eq 'other'"})["value"] == []
    assert call(empty, "GET", f"/applications/{created['id']}")["passwordCredentials"] == []


def test_duplicate_identifier_uri_is_400_on_create_and_on_update(empty):
    call(empty, "POST", "/applications", body=APP)
    status, message = _status(empty, "POST", "/applications", body={**APP, "displayName": "twin"})
    assert (status, message) == (400, "Another object with the same value for property identifierUris already exists.")
    other = call(empty, "POST", "/applications", body={"displayName": "other"})
    body = {"identifierUris": ["API://mfa-reset-extension"]}
    assert _status(empty, "PATCH", f"/applications/{other['id']}", body=body)[0] == 400


@pytest.mark.parametrize(
    "body",
    [
        {"identifierUris": ["api://x"]},  # no displayName
        {**APP, "signInAudience": "Everyone"},
        {**APP, "identifierUris": ["not a uri"]},
        {**APP, "web": {"redirectUris": ["http://func.example/.auth/login/aad/callback"]}},
        {**APP, "web": {"implicitGrantSettings": {"enableIdTokenIssuance": "yes"}}},
        {**APP, "unknownProperty": 1},
    ],
)
def test_invalid_application_properties_are_400(empty, body):
    assert _status(empty, "POST", "/applications", body=body)[0] == 400
    assert call(empty, "GET", "/applications")["value"] == []


def test_creating_an_application_needs_an_application_write_permission(tmp_path, monkeypatch):
    with tenant_without(tmp_path, monkeypatch, "Application.ReadWrite.OwnedBy") as tenant:
        with pytest.raises(Forbidden):
            call(tenant, "POST", "/applications", body=APP)
        assert call(tenant, "GET", "/applications")["value"] == []  # Application.Read.All still lists


def test_owned_by_reaches_only_applications_the_caller_owns(empty):
    created = call(empty, "POST", "/applications", body=APP)
    call(empty, "PATCH", f"/applications/{created['id']}", body={"displayName": "renamed"})
    empty.state.extras["registrations"][created["id"]]["_owners"] = ["someone-else"]
    with pytest.raises(Forbidden):
        call(empty, "PATCH", f"/applications/{created['id']}", body={"displayName": "again"})
    with pytest.raises(Forbidden):
        call(empty, "POST", f"/applications/{created['id']}/federatedIdentityCredentials", body=FIC)


def test_patching_web_replaces_it_and_unknown_application_is_404(empty):
    web = {"redirectUris": ["https://a.example/cb"], "implicitGrantSettings": {"enableIdTokenIssuance": True}}
    created = call(empty, "POST", "/applications", body={"displayName": "web", "web": web})
    call(empty, "PATCH", f"/applications/{created['id']}", body={"web": {"redirectUris": ["https://b.example/cb"]}})
    after = call(empty, "GET", f"/applications/{created['id']}")["web"]
    assert after["redirectUris"] == ["https://b.example/cb"]
    assert after["implicitGrantSettings"]["enableIdTokenIssuance"] is False
    assert _status(empty, "GET", "/applications/00000000-0000-0000-0000-00000000dead")[0] == 404


def test_service_principal_is_created_once_for_a_registered_application(empty):
    created = call(empty, "POST", "/applications", body=APP)
    principal = call(empty, "POST", "/servicePrincipals", body={"appId": created["appId"]})
    assert principal["appId"] == created["appId"]
    listed = call(empty, "GET", "/servicePrincipals", query={"$filter": f"appId eq '{created['appId']}'"})
    assert [p["id"] for p in listed["value"]] == [principal["id"]]
    assert _status(empty, "POST", "/servicePrincipals", body={"appId": created["appId"]})[0] == 409
    unknown = {"appId": "00000000-0000-0000-0000-00000000beef"}
    assert _status(empty, "POST", "/servicePrincipals", body=unknown)[0] == 400


def test_federated_credential_rules(empty):
    created = call(empty, "POST", "/applications", body=APP)
    path = f"/applications/{created['id']}/federatedIdentityCredentials"
    made = call(empty, "POST", path, body=FIC)
    assert made["audiences"] == ["api://AzureADTokenExchange"]
    assert [f["name"] for f in call(empty, "GET", path)["value"]] == ["function-identity"]
    assert _status(empty, "POST", path, body={**FIC, "subject": "other"})[0] == 400  # name taken
    assert _status(empty, "POST", path, body={**FIC, "name": "second"})[0] == 400  # same issuer and subject
    for bad in (
        {k: v for k, v in FIC.items() if k != "audiences"},
        {**FIC, "name": "two-audiences", "audiences": ["api://AzureADTokenExchange", "api://other"]},
        {**FIC, "name": "http-issuer", "issuer": "http://issuer.example"},
        {**FIC, "name": "bad name!"},
    ):
        assert _status(empty, "POST", path, body=bad)[0] == 400
    call(empty, "PATCH", f"{path}/{made['id']}", body={"subject": "new-subject"})
    assert call(empty, "GET", path)["value"][0]["subject"] == "new-subject"
    assert _status(empty, "PATCH", f"{path}/{made['id']}", body={"name": "renamed"})[0] == 400


def test_operator_is_the_caller_the_tenant_records_as_owner(empty):
    created = call(empty, "POST", "/applications", body=APP)
    assert empty.state.extras["registrations"][created["id"]]["_owners"] == [OPERATOR[1]]
