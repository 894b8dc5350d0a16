"""The local tenant's configuration endpoints enforce Graph's documented shapes: 400, 404 and 403."""

from __future__ import annotations

import asyncio

import pytest

from graph.errors import Forbidden, GraphCallError, NotFound
from graph.raw import GraphCaller
from tests.conftest import F
from tests.graph_clients import graph_client
from tests.provision.conftest import OPERATOR

EM = "/identityGovernance/entitlementManagement"


def call(tenant, method: str, path: str, client_id: str = OPERATOR[0], **kwargs):
    async def go():
        return await GraphCaller(graph_client(tenant, client_id)).json(method, path, **kwargs)

    return asyncio.run(go())


def test_catalog_without_display_name_is_400(empty):
    with pytest.raises(GraphCallError) as error:
        call(empty, "POST", f"{EM}/catalogs", body={"description": "no name"})
    assert error.value.status == 400
    assert "displayName" in error.value.message


def test_package_in_an_unknown_catalog_is_404(empty):
    with pytest.raises(NotFound):
        call(empty, "POST", f"{EM}/accessPackages", body={"displayName": "x", "catalog": {"id": "nope"}})


def test_policy_naming_an_extension_of_another_catalog_is_404(empty):
    catalog = call(empty, "POST", f"{EM}/catalogs", body={"displayName": "c"})
    package = call(empty, "POST", f"{EM}/accessPackages", body={"displayName": "p", "catalog": {"id": catalog["id"]}})
    body = {
        "accessPackage": {"id": package["id"]},
        "customExtensionStageSettings": [{"stage": "assignmentRequestCreated", "customExtension": {"id": "nope"}}],
    }
    with pytest.raises(NotFound):
        call(empty, "POST", f"{EM}/assignmentPolicies", body=body)


def test_extension_with_a_timeout_over_two_seconds_is_400(empty):
    catalog = call(empty, "POST", f"{EM}/catalogs", body={"displayName": "c"})
    body = {
        "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension",
        "displayName": "e",
        "endpointConfiguration": {
            "@odata.type": "#microsoft.graph.logicAppTriggerEndpointConfiguration",
            "subscriptionId": "s",
            "resourceGroupName": "r",
            "logicAppWorkflowName": "w",
            "url": "http://127.0.0.1:9/",
        },
        "authenticationConfiguration": {"@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication"},
        "clientConfiguration": {"timeoutInMilliseconds": 5000},
    }
    with pytest.raises(GraphCallError) as error:
        call(empty, "POST", f"{EM}/catalogs/{catalog['id']}/customWorkflowExtensions", body=body)
    assert error.value.status == 400


def test_conditional_access_policy_for_an_unknown_group_is_404(empty):
    body = {
        "displayName": "x",
        "state": "enabledForReportingButNotEnforced",
        "conditions": {"users": {"includeGroups": ["nope"]}, "applications": {"includeApplications": ["All"]}},
    }
    with pytest.raises(NotFound):
        call(empty, "POST", "/identity/conditionalAccess/policies", body=body)


def test_authentication_strength_with_an_unknown_method_is_400(empty):
    body = {"displayName": "x", "allowedCombinations": ["fido2", "carrierPigeon"]}
    with pytest.raises(GraphCallError) as error:
        call(empty, "POST", "/policies/authenticationStrengthPolicies", body=body)
    assert "carrierPigeon" in error.value.message


def test_granting_an_app_role_without_app_role_assignment_permission_is_403(empty):
    path = f"/servicePrincipals/{F.APP['func'][1]}/appRoleAssignments"
    with pytest.raises(Forbidden):
        call(empty, "POST", path, client_id=F.APP["func"][0], body={"principalId": "x"})


def test_granted_app_role_appears_in_the_identitys_next_token(empty):
    with pytest.raises(Forbidden):  # the empty tenant's function identity starts with no app roles
        call(empty, "GET", f"/users/{F.U['tom']}", client_id=F.APP["func"][0])
    query = {"$filter": "appId eq '00000003-0000-0000-c000-000000000000'"}
    graph_sp = call(empty, "GET", "/servicePrincipals", query=query)
    role = next(r for r in graph_sp["value"][0]["appRoles"] if r["value"] == "User.Read.All")
    body = {"principalId": F.APP["func"][1], "resourceId": graph_sp["value"][0]["id"], "appRoleId": role["id"]}
    call(empty, "POST", f"/servicePrincipals/{F.APP['func'][1]}/appRoleAssignments", body=body)
    user = call(empty, "GET", f"/users/{F.U['tom']}", client_id=F.APP["func"][0])
    assert user["id"] == F.U["tom"]


def test_catalog_role_on_an_unknown_catalog_is_404(empty):
    body = {
        "principalId": F.APP["func"][1],
        "roleDefinitionId": "e2182095-804a-4656-ae11-64734e9b7ae5",
        "appScopeId": "/AccessPackageCatalog/nope",
    }
    with pytest.raises(NotFound):
        call(empty, "POST", "/roleManagement/entitlementManagement/roleAssignments", body=body)
