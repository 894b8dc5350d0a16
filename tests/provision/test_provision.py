"""The provisioning CLI against the local tenant: create on an empty tenant, idempotence, drift, missing roles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from graph.raw import GraphCaller
from local.tenant.graph_apps import GRAPH_SP_ID
from provision.cli import app
from tests.conftest import F
from tests.graph_clients import graph_client
from tests.provision.conftest import OPERATOR, OPERATOR_ROLES, empty_tenant, start, tenant_without, write_config

EM = "/identityGovernance/entitlementManagement"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def graph(tenant, method: str, path: str, **kwargs):
    """One Graph call as the operator, through the product's Graph layer."""

    async def call():
        return await GraphCaller(graph_client(tenant, OPERATOR[0])).json(method, path, **kwargs)

    return asyncio.run(call())


def test_apply_on_an_empty_tenant_creates_every_object(empty, tmp_path: Path):
    result = run("apply", "--config", str(write_config(tmp_path, empty)))
    assert result.exit_code == 0, result.output
    assert "32 change(s) applied" in result.output
    catalogs = graph(empty, "GET", f"{EM}/catalogs")["value"]
    assert [c["displayName"] for c in catalogs] == ["MFA reset"]
    extensions = graph(empty, "GET", f"{EM}/catalogs/{catalogs[0]['id']}/customWorkflowExtensions")["value"]
    assert (
        sorted(e["authenticationConfiguration"]["@odata.type"] for e in extensions)
        == ["#microsoft.graph.azureAdPopTokenAuthentication"] * 2
    )
    ca = graph(empty, "GET", "/identity/conditionalAccess/policies")["value"][0]
    assert ca["state"] == "enabledForReportingButNotEnforced"
    assert ca["conditions"]["users"]["includeGroups"] == [F.G["onboarding"]]
    func = empty.state.applications[F.APP["func"][0]]
    assert "UserAuthMethod-TAP.ReadWrite.All" in func["graphRoles"]
    assert "UserAuthenticationMethod.ReadWrite.All" not in func["graphRoles"]
    assert "EntitlementManagement.ReadWrite.All" not in func["graphRoles"]
    roles = graph(empty, "GET", "/roleManagement/entitlementManagement/roleAssignments")["value"]
    assert roles[0]["appScopeId"] == f"/AccessPackageCatalog/{catalogs[0]['id']}"
    assert roles[0]["principalId"] == F.APP["func"][1]


def test_policy_has_two_approval_stages_expiry_and_wait_stages(empty, tmp_path: Path):
    run("apply", "--config", str(write_config(tmp_path, empty)))
    package = graph(empty, "GET", f"{EM}/accessPackages", query={"$filter": "displayName eq 'MFA reset'"})["value"][0]
    listed = graph(empty, "GET", f"{EM}/accessPackages/{package['id']}/assignmentPolicies")["value"]
    expand = {"$expand": "customExtensionStageSettings($expand=customExtension)"}
    policy = graph(empty, "GET", f"{EM}/assignmentPolicies/{listed[0]['id']}", query=expand)
    stages = policy["requestApprovalSettings"]["stages"]
    assert [s["primaryApprovers"][0]["@odata.type"] for s in stages] == [
        "#microsoft.graph.requestorManager",
        "#microsoft.graph.groupMembers",
    ]
    assert policy["expiration"] == {"type": "afterDuration", "duration": "PT24H"}
    waits = {
        s["stage"] for s in policy["customExtensionStageSettings"] if s["customExtension"].get("callbackConfiguration")
    }
    assert waits == {"assignmentRequestCreated", "assignmentRequestGranted"}


def test_provisioned_new_hire_package_delivers_the_onboarding_group(empty, tmp_path: Path):
    run("apply", "--config", str(write_config(tmp_path, empty)))
    package = next(p for p in empty.state.extras["em"].packages.values() if p["displayName"] == "New hire onboarding")
    http = httpx.Client(base_url=empty.url, timeout=10)
    body = {"requestorId": F.U["megan"], "targetId": F.U["tom"], "accessPackageId": package["id"]}
    request_id = http.post("/_control/em/requests", json=body).json()["id"]
    for _ in range(50):
        if http.get(f"/_control/em/requests/{request_id}").json()["request"]["state"] == "pendingApproval":
            break
        asyncio.run(asyncio.sleep(0.05))
    http.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": F.U["sam"]}).raise_for_status()
    for _ in range(50):
        if F.U["tom"] in empty.state.groups[F.G["onboarding"]]["members"]:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert F.U["tom"] in empty.state.groups[F.G["onboarding"]]["members"]


def test_second_apply_changes_nothing(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    again = run("apply", "--config", config)
    assert again.exit_code == 0, again.output
    assert "0 change(s) applied" in again.output
    assert "Nothing to change." in run("plan", "--config", config).output


def test_status_is_in_sync_right_after_apply(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    status = run("status", "--config", config)
    assert status.exit_code == 0, status.output
    assert "In sync." in status.output


def test_hand_enabled_conditional_access_policy_shows_as_drift(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    policy = graph(empty, "GET", "/identity/conditionalAccess/policies")["value"][0]
    graph(empty, "PATCH", f"/identity/conditionalAccess/policies/{policy['id']}", body={"state": "enabled"})
    status = run("status", "--config", config)
    assert status.exit_code == 1
    assert "'enabled' → 'enabledForReportingButNotEnforced'" in status.output


def test_hand_removed_app_role_shows_as_drift_and_apply_restores_it(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    path = f"/servicePrincipals/{F.APP['func'][1]}/appRoleAssignments"
    tap = next(a for a in graph(empty, "GET", path)["value"] if a["appRoleId"] and a["resourceId"] == GRAPH_SP_ID)
    graph(empty, "DELETE", f"{path}/{tap['id']}")
    status = run("status", "--config", config)
    assert status.exit_code == 1
    assert "1 object(s) drifted" in status.output
    assert "1 change(s) applied" in run("apply", "--config", config).output


def test_hand_shortened_expiry_shows_as_drift(empty, tmp_path: Path):
    config = str(write_config(tmp_path, empty))
    run("apply", "--config", config)
    package = graph(empty, "GET", f"{EM}/accessPackages", query={"$filter": "displayName eq 'MFA reset'"})["value"][0]
    policy = next(iter(empty.state.extras["em"].packages[package["id"]]["assignmentPolicies"]))
    policy["expiration"] = {"type": "afterDuration", "duration": "PT2H"}  # as an admin would in the portal
    status = run("status", "--config", config)
    assert status.exit_code == 1
    assert "expiration.duration: 'PT2H' → 'PT24H'" in status.output


def test_operator_without_conditional_access_permission_gets_a_clear_error(tmp_path, monkeypatch):
    with tenant_without(tmp_path, monkeypatch, "Policy.ReadWrite.ConditionalAccess") as tenant:
        result = run("apply", "--config", str(write_config(tmp_path, tenant)))
    assert result.exit_code == 3
    assert "Policy.ReadWrite.ConditionalAccess" in result.output
    assert "Conditional Access Administrator" in result.output


def test_operator_without_entitlement_management_permission_fails_before_changing_anything(tmp_path, monkeypatch):
    with tenant_without(tmp_path, monkeypatch, "EntitlementManagement.ReadWrite.All") as tenant:
        result = run("apply", "--config", str(write_config(tmp_path, tenant)))
        catalogs = tenant.state.extras.get("em").catalogs if "em" in tenant.state.extras else {}
    assert result.exit_code == 3
    assert "EntitlementManagement.ReadWrite.All" in result.output
    assert catalogs == {}


def test_direct_url_option_registers_an_http_endpoint_with_bearer_authentication(empty, tmp_path: Path):
    direct = {"endpoint": "directUrl", "directUrl": {"url": "http://127.0.0.1:9/api/callout", "resourceId": F.EXT}}
    result = run("apply", "--config", str(write_config(tmp_path, empty, extension=direct)))
    assert result.exit_code == 0, result.output
    extension = next(iter(empty.state.extras["em"].extensions.values()))
    assert extension["endpointConfiguration"]["@odata.type"] == "#microsoft.graph.httpRequestEndpoint"
    assert extension["authenticationConfiguration"]["resourceId"] == F.EXT


def test_existing_setup_is_adopted_and_broad_permissions_are_flagged(tmp_path, monkeypatch):
    data = F.build()
    func = next(a for a in data["applications"] if a["appId"] == F.APP["func"][0])
    func["graphRoles"].append("EntitlementManagement.ReadWrite.All")  # as a manual setup may have granted it
    data["applications"].append(empty_tenant(OPERATOR_ROLES)["applications"][1])
    tenant = start(tmp_path, monkeypatch, data)
    try:
        result = run("plan", "--config", str(write_config(tmp_path, tenant)))
    finally:
        tenant.__exit__(None, None, None)
    assert result.exit_code == 0, result.output
    assert "broader than needed" in result.output
    catalog_line = next(line for line in result.output.splitlines() if "│ catalog " in line)
    assert "│ update │" in catalog_line  # the fixture's "MFA reset" catalog is found, not created again


def test_unknown_config_key_is_refused_with_its_name(empty, tmp_path: Path):
    result = run("plan", "--config", str(write_config(tmp_path, empty, catalogue={"displayName": "typo"})))
    assert result.exit_code == 3
    assert "catalogue" in result.output


def test_missing_onboarding_group_is_named(empty, tmp_path: Path):
    missing = "11111111-0000-4000-8000-000000000099"
    result = run("plan", "--config", str(write_config(tmp_path, empty, onboardingGroupId=missing)))
    assert result.exit_code == 3
    assert missing in result.output


@pytest.mark.parametrize("command", ["plan", "status"])
def test_read_only_commands_change_nothing(empty, tmp_path: Path, command: str):
    run(command, "--config", str(write_config(tmp_path, empty)))
    assert "em" not in empty.state.extras or not empty.state.extras["em"].catalogs


def test_sample_config_is_valid():
    from provision.config import load

    cfg = load(Path(__file__).resolve().parents[2] / "provision" / "provision.sample.yaml")
    assert cfg.conditional_access.state == "enabledForReportingButNotEnforced"


def test_apply_prints_the_package_ids_the_app_settings_need(empty, tmp_path: Path):
    result = run("apply", "--config", str(write_config(tmp_path, empty)))
    packages = {p["displayName"]: p["id"] for p in empty.state.extras["em"].packages.values()}
    assert f"MFA_RESET_PACKAGE_IDS={packages['MFA reset']}" in result.output
    assert f"ONBOARDING_PACKAGE_IDS={packages['New hire onboarding']}" in result.output


def test_revoke_broader_removes_the_broad_roles_only_after_their_replacements_exist(tmp_path, monkeypatch):
    """apply --revoke-broader: the per-method roles and the catalog role are granted, then the broad ones revoked."""
    data = F.build()
    func = next(a for a in data["applications"] if a["appId"] == F.APP["func"][0])
    func["graphRoles"] = ["User.Read.All", "UserAuthenticationMethod.ReadWrite.All"]
    func["graphRoles"].append("EntitlementManagement.ReadWrite.All")
    data["entitlementManagement"]["roleAssignments"] = []  # a manual setup: tenant-wide permissions, no catalog role
    data["applications"].append(empty_tenant(OPERATOR_ROLES)["applications"][1])
    tenant = start(tmp_path, monkeypatch, data)
    try:
        config = str(write_config(tmp_path, tenant))
        kept = run("apply", "--config", config)
        assert "broader than needed" in kept.output
        assert "EntitlementManagement.ReadWrite.All" in tenant.state.applications[F.APP["func"][0]]["graphRoles"]

        revoked = run("apply", "--config", config, "--revoke-broader")
        assert revoked.exit_code == 0, revoked.output
        roles = set(tenant.state.applications[F.APP["func"][0]]["graphRoles"])
        assert not roles & {"UserAuthenticationMethod.ReadWrite.All", "EntitlementManagement.ReadWrite.All"}
        assert "UserAuthMethod-TAP.ReadWrite.All" in roles
        path = "/roleManagement/entitlementManagement/roleAssignments"
        held = graph(tenant, "GET", path)["value"]
        assert any(a["principalId"] == F.APP["func"][1] for a in held)
        assert "Nothing to change." in run("plan", "--config", config).output
    finally:
        tenant.__exit__(None, None, None)


def test_one_apply_with_revoke_broader_grants_the_replacements_before_it_revokes(tmp_path, monkeypatch):
    """In a single run against a manual setup, every DELETE of a broad role comes after the last grant."""
    data = F.build()
    func = next(a for a in data["applications"] if a["appId"] == F.APP["func"][0])
    func["graphRoles"] = ["User.Read.All", "UserAuthenticationMethod.ReadWrite.All"]
    func["graphRoles"].append("EntitlementManagement.ReadWrite.All")
    data["entitlementManagement"]["roleAssignments"] = []
    data["applications"].append(empty_tenant(OPERATOR_ROLES)["applications"][1])
    tenant = start(tmp_path, monkeypatch, data)
    try:
        result = run("apply", "--config", str(write_config(tmp_path, tenant)), "--revoke-broader")
        assert result.exit_code == 0, result.output
        log = httpx.get(f"{tenant.url}/_control/requests").json()
        writes = [(i, e["method"], e["path"].lower()) for i, e in enumerate(log)]
        grants = [i for i, method, path in writes if method == "POST" and "roleassignments" in path]
        revokes = [i for i, method, path in writes if method == "DELETE" and "approleassignments" in path]
        assert grants
        assert len(revokes) == 2
        assert max(grants) < min(revokes)
    finally:
        tenant.__exit__(None, None, None)
