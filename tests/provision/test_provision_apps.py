"""Provisioning the app registrations: the callout audience's app and service principal, and the optional Easy Auth
app with its federated credential for the function's user-assigned identity."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import F
from tests.provision.conftest import tenant_without, write_config
from tests.provision.test_provision import graph, run

HOST = "func-mfareset-test.azurewebsites.net"
EASY = {"enabled": True, "functionHost": HOST}


def _apps(tenant) -> dict[str, dict]:
    return {a["displayName"]: a for a in graph(tenant, "GET", "/applications")["value"]}


def _sp(tenant, app_id: str) -> list[dict]:
    return graph(tenant, "GET", "/servicePrincipals", query={"$filter": f"appId eq '{app_id}'"})["value"]


def test_apply_creates_the_callout_app_and_easy_auth_app_with_principals_and_federated_credential(empty, tmp_path):
    result = run("apply", "--config", str(write_config(tmp_path, empty, easyAuth=EASY)))
    assert result.exit_code == 0, result.output
    assert "35 change(s) applied" in result.output  # 32 + the Easy Auth app, its principal, its credential
    apps = _apps(empty)
    callout = apps["MFA Reset Extension callout"]
    assert callout["identifierUris"] == [F.EXT]
    assert callout["signInAudience"] == "AzureADMyOrg"
    assert callout["passwordCredentials"] == []
    assert callout["keyCredentials"] == []
    assert len(_sp(empty, callout["appId"])) == 1
    easy = apps["MFA Reset Extension pickup sign-in"]
    assert easy["web"]["redirectUris"] == [f"https://{HOST}/.auth/login/aad/callback"]
    assert easy["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is True
    assert easy["signInAudience"] == "AzureADMyOrg"
    assert len(_sp(empty, easy["appId"])) == 1
    [credential] = graph(empty, "GET", f"/applications/{easy['id']}/federatedIdentityCredentials")["value"]
    assert credential["issuer"] == f"https://login.microsoftonline.com/{empty.state.tenant_id}/v2.0"
    assert credential["subject"] == F.APP["func"][1]  # the user-assigned identity's object (principal) id
    assert credential["audiences"] == ["api://AzureADTokenExchange"]
    assert f"App setting CALLOUT_AUDIENCE={F.EXT} (app id {callout['appId']})" in result.output
    assert f"App setting EASY_AUTH_CLIENT_ID={easy['appId']}" in result.output


def test_second_apply_with_easy_auth_changes_nothing(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty, easyAuth=EASY))
    run("apply", "--config", config)
    again = run("apply", "--config", config)
    assert "0 change(s) applied" in again.output, again.output
    assert len(graph(empty, "GET", "/applications")["value"]) == 2
    assert "In sync." in run("status", "--config", config).output


def test_plan_on_an_empty_tenant_lists_the_apps_without_creating_them(empty, tmp_path: Path):
    result = run("plan", "--config", str(write_config(tmp_path, empty, easyAuth=EASY)))
    assert result.exit_code == 0, result.output
    assert "callout audience" in result.output
    assert "federated credential" in result.output
    assert graph(empty, "GET", "/applications")["value"] == []


def test_hand_changed_identifier_uri_shows_as_drift_and_apply_restores_it(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    callout = _apps(empty)["MFA Reset Extension callout"]
    graph(empty, "PATCH", f"/applications/{callout['id']}", body={"identifierUris": ["api://something-else"]})
    status = run("status", "--config", config)
    assert status.exit_code == 1
    assert "api://something-else" in status.output
    assert "1 object(s) drifted" in status.output
    assert "1 change(s) applied" in run("apply", "--config", config).output
    assert _apps(empty)["MFA Reset Extension callout"]["identifierUris"] == [F.EXT]


def test_hand_changed_redirect_uri_shows_as_drift(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty, easyAuth=EASY))
    run("apply", "--config", config)
    easy = _apps(empty)["MFA Reset Extension pickup sign-in"]
    web = {"redirectUris": ["https://elsewhere.example/.auth/login/aad/callback"]}
    graph(empty, "PATCH", f"/applications/{easy['id']}", body={"web": web})
    status = run("status", "--config", config)
    assert status.exit_code == 1
    assert "elsewhere.example" in status.output
    assert "1 change(s) applied" in run("apply", "--config", config).output


def test_changed_managed_identity_updates_the_federated_credential(empty, tmp_path: Path):
    run("apply", "--config", str(write_config(tmp_path, empty, easyAuth=EASY)))
    other = {**EASY, "managedIdentityObjectId": "5e0b0000-0000-4000-8000-000000000001"}
    config = str(write_config(tmp_path, empty, easyAuth=other))
    assert "subject" in run("status", "--config", config).output
    assert "1 change(s) applied" in run("apply", "--config", config).output
    easy = _apps(empty)["MFA Reset Extension pickup sign-in"]
    [credential] = graph(empty, "GET", f"/applications/{easy['id']}/federatedIdentityCredentials")["value"]
    assert credential["subject"] == other["managedIdentityObjectId"]


def test_operator_without_application_permission_gets_a_clear_error(tmp_path, monkeypatch):
    with tenant_without(tmp_path, monkeypatch, "Application.ReadWrite.OwnedBy") as tenant:
        result = run("apply", "--config", str(write_config(tmp_path, tenant)))
    assert result.exit_code == 3
    assert "POST /applications" in result.output
    assert "Application.ReadWrite.OwnedBy" in result.output


def test_app_registration_made_by_someone_else_needs_more_than_owned_by(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    callout = _apps(empty)["MFA Reset Extension callout"]
    empty.state.extras["registrations"][callout["id"]]["_owners"] = []  # as if an admin had made it by hand
    empty.state.extras["registrations"][callout["id"]]["signInAudience"] = "AzureADMultipleOrgs"
    result = run("apply", "--config", config)
    assert result.exit_code == 3
    assert "Application.ReadWrite.All" in result.output
    assert "owner" in result.output


def test_easy_auth_needs_the_function_host(empty, tmp_path: Path):
    result = run("plan", "--config", str(write_config(tmp_path, empty, easyAuth={"enabled": True})))
    assert result.exit_code == 3
    assert "functionHost" in result.output


def test_callout_app_can_be_left_to_a_manual_setup(empty, tmp_path: Path):
    result = run("apply", "--config", str(write_config(tmp_path, empty, calloutApp={"enabled": False})))
    assert "30 change(s) applied" in result.output, result.output
    assert graph(empty, "GET", "/applications")["value"] == []
