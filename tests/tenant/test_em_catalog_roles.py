"""EM access through a catalog role: the function's identity holds "Access package assignment manager" on the
fixture's catalog instead of EntitlementManagement.ReadWrite.All, and that role alone decides what it may do."""

from __future__ import annotations

import httpx

from local.tenant import TenantServer
from local.tenant.em import ASSIGNMENT_MANAGER, CATALOG_READER
from local.tenant.em_engine import engine
from local.tenant.gov_common import governance
from provision.permissions import FUNCTION_GRAPH_ROLES, TEAMS_BOT_ROLES
from tests.conftest import F
from tests.tenant import test_em as base
from tests.tenant.test_em import CREATED, PACKAGE, callout, raw, resume_body, submit

FUNC = F.APP["func"][0]
receiver = base.receiver  # the callout receiver and the control client of the EM tests, reused as fixtures
em = base.em


async def waiting_request(em: httpx.AsyncClient) -> tuple[str, str]:
    """A request whose created stage waits for its callback: (request id, stage instance id)."""
    request_id = await submit(em)
    instance = (await callout(em, request_id, CREATED, "waitingForCallback"))["customExtensionStageInstanceId"]
    return request_id, instance


async def read_and_resume(tenant: TenantServer, request_id: str, instance: str) -> tuple[int, int]:
    """The function identity reads the request, then resumes its created stage: the two status codes."""
    read = await raw(tenant, "GET", f"/assignmentRequests/{request_id}", client_id=FUNC)
    path = f"/assignmentRequests/{request_id}/resume"
    resumed = await raw(tenant, "POST", path, client_id=FUNC, json=resume_body(CREATED, instance))
    return read.status_code, resumed.status_code


def roles_of_func(tenant: TenantServer) -> dict:
    return governance(tenant.state)["roleAssignments"]


def test_the_fixture_identity_has_exactly_what_provisioning_grants():
    """Every test runs the product with the least-privilege permission set `provision apply` grants."""
    func = next(a for a in F.build()["applications"] if a["appId"] == FUNC)
    assert set(func["graphRoles"]) == set(FUNCTION_GRAPH_ROLES) | set(TEAMS_BOT_ROLES)
    assert not {"EntitlementManagement.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"} & set(
        func["graphRoles"]
    )
    held = F.build()["entitlementManagement"]["roleAssignments"]
    assert [(r["principalId"], r["roleDefinitionId"]) for r in held] == [(F.APP["func"][1], ASSIGNMENT_MANAGER)]


async def test_the_catalog_role_lets_the_identity_read_and_resume_its_catalogs_requests(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id, instance = await waiting_request(em)
    assert await read_and_resume(tenant_env, request_id, instance) == (200, 204)


async def test_without_the_catalog_role_the_identity_is_refused(tenant_env: TenantServer, em: httpx.AsyncClient):
    """Taking the role away (the identity has no EM permission) turns reads, resumes and removals into 403."""
    request_id = await submit(em)
    roles_of_func(tenant_env).clear()
    for method, path, body in (
        ("GET", f"/assignmentRequests/{request_id}", None),
        ("GET", "/assignments", None),
        ("POST", f"/assignmentRequests/{request_id}/resume", resume_body(CREATED, "x")),
        ("POST", "/assignmentRequests", {"requestType": "adminRemove", "assignment": {"id": "x"}}),
    ):
        response = await raw(tenant_env, method, path, client_id=FUNC, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "Authorization_RequestDenied"


async def test_a_catalog_reader_may_read_but_not_resume(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id, instance = await waiting_request(em)
    for assignment in roles_of_func(tenant_env).values():
        assignment["roleDefinitionId"] = CATALOG_READER
    assert await read_and_resume(tenant_env, request_id, instance) == (200, 403)


async def test_requests_of_another_catalogs_package_are_out_of_reach(tenant_env: TenantServer, em: httpx.AsyncClient):
    """The role is scoped to one catalog: a package moved to another catalog is 403 to read and absent from lists."""
    request_id = await submit(em)
    engine(tenant_env.state).packages[PACKAGE["id"]]["catalogId"] = "another-catalog"
    assert (await raw(tenant_env, "GET", f"/assignmentRequests/{request_id}", client_id=FUNC)).status_code == 403
    listed = await raw(tenant_env, "GET", "/assignmentRequests", client_id=FUNC)
    assert listed.status_code == 200
    assert request_id not in {r["id"] for r in listed.json()["value"]}
