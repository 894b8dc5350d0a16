"""Throttling (identity and access service limits of https://learn.microsoft.com/graph/throttling-limits), latency
and fault injection, driven through msgraph-sdk (typed, with its RetryHandler) and httpx with a managed-identity
token; limits are made tiny through the control API and the tenant clock refills the buckets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.api_error import APIError
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

from local.tenant import TenantServer
from local.tenant.throttle import cost
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U = F.U
FUNC, LIMITED = F.APP["func"][0], F.APP["limited"][0]
REGISTRATION = "/reports/authenticationMethods/userRegistrationDetails"


async def token(client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(GRAPH_SCOPE)).token


class Raw:
    """Plain httpx calls to the tenant's Graph v1.0 as one identity."""

    def __init__(self, tenant: TenantServer, bearer: str, timeout: float = 30):
        self.client = httpx.Client(
            base_url=tenant.graph_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=timeout
        )

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, **kwargs)

    def revoke(self, user: str = "tom") -> httpx.Response:
        return self("POST", f"/users/{U[user]}/revokeSignInSessions")


async def raw(tenant: TenantServer, client_id: str | None = None, seconds: float = 30) -> Raw:
    return Raw(tenant, await token(client_id), seconds)


def control(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{tenant.url}/_control/{path}", json=body).raise_for_status()


def limits(tenant: TenantServer, **values: float) -> None:
    control(tenant, "PUT", "throttle", {"limits": values})


def advance(tenant: TenantServer, seconds: float) -> None:
    control(tenant, "POST", "clock", {"advanceSeconds": seconds})


def no_retry() -> UserItemRequestBuilder.UserItemRequestBuilderGetRequestConfiguration:
    return UserItemRequestBuilder.UserItemRequestBuilderGetRequestConfiguration(
        options=[RetryHandlerOption(max_retries=0, should_retry=False)]
    )


# --- Costs (the page's base request cost table) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/v1.0/users/x", {}, (1, 0)),
        ("GET", "/v1.0/users", {}, (2, 0)),
        ("GET", "/v1.0/users", {"$select": "id"}, (1, 0)),
        ("GET", "/v1.0/users", {"$top": "5"}, (1, 0)),
        ("GET", "/v1.0/users", {"$top": "50", "$expand": "manager"}, (3, 0)),
        ("GET", "/v1.0/groups/g/members", {}, (3, 0)),
        ("GET", "/v1.0/groups/g/transitiveMembers", {}, (5, 0)),
        ("GET", "/v1.0/users/x/transitiveMemberOf", {}, (2, 0)),
        ("GET", "/beta/users/x/memberOf/microsoft.graph.directoryRole", {}, (2, 0)),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, (5, 0)),
        ("POST", "/v1.0/directoryObjects/getByIds", {"$select": "id"}, (2, 0)),
        ("POST", "/v1.0/users/x/checkMemberGroups", {}, (4, 0)),
        ("POST", "/v1.0/users/x/revokeSignInSessions", {}, (1, 1)),
        ("DELETE", "/v1.0/users/x/authentication/phoneMethods/p", {}, (1, 1)),
        ("PATCH", "/v1.0/users/x", {"$select": "id"}, (1, 1)),
    ],
)
def test_request_costs_follow_the_documented_table_and_query_option_rules(method, path, query, expected):
    assert cost(method, path, query) == expected


# --- Buckets ---------------------------------------------------------------------------------------------------


async def test_writes_over_the_app_limit_get_graphs_429_with_retry_after_and_throttle_headers(tenant_env: TenantServer):
    limits(tenant_env, writes=2)  # 2 writes per 150 s: one write back every 75 s
    call = await raw(tenant_env)
    assert [call.revoke().status_code for _ in range(2)] == [200, 200]
    refused = call.revoke()
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "75"
    assert refused.headers["x-ms-throttle-scope"] == f"Tenant_Application/Write/{FUNC}/{tenant_env.state.tenant_id}"
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert call("GET", f"/users/{U['tom']}").status_code == 200  # reads are still allowed


async def test_advancing_the_tenant_clock_by_retry_after_refills_the_bucket(tenant_env: TenantServer):
    limits(tenant_env, writes=2)
    call = await raw(tenant_env)
    call.revoke(), call.revoke()
    retry_after = int(call.revoke().headers["Retry-After"])
    advance(tenant_env, retry_after - 1)
    assert call.revoke().status_code == 429
    advance(tenant_env, 1)
    assert call.revoke().status_code == 200


async def test_the_sdk_surfaces_the_429_when_its_retry_handler_is_off(tenant_env: TenantServer):
    limits(tenant_env, resourceUnits=1)
    client = graph_client(tenant_env)
    first = await client.users.by_user_id(U["tom"]).get(request_configuration=no_retry())
    assert first.display_name == "Tom Target"
    with pytest.raises(APIError) as caught:
        await client.users.by_user_id(U["tom"]).get(request_configuration=no_retry())
    assert caught.value.response_status_code == 429
    assert 1 <= int(caught.value.response_headers["retry-after"]) <= 10  # 1 unit back every 10 s


async def test_reads_are_charged_the_documented_resource_units(tenant_env: TenantServer):
    limits(tenant_env, resourceUnits=4)
    call = await raw(tenant_env)
    listed = call("GET", "/users")
    assert listed.headers["x-ms-resource-unit"] == "2"
    assert call("GET", "/users").status_code == 200  # 2 + 2 = 4 units
    assert call("GET", f"/users/{U['tom']}").status_code == 429  # even 1 more unit does not fit


async def test_each_app_has_its_own_write_bucket(tenant_env: TenantServer):
    limits(tenant_env, writes=1)
    func, other = await raw(tenant_env), await raw(tenant_env, LIMITED)
    assert func.revoke().status_code == 200
    assert func.revoke().status_code == 429
    assert other.revoke().status_code == 403  # its own bucket has room: the handler refuses the permission


async def test_the_tenant_write_limit_is_shared_by_every_app(tenant_env: TenantServer):
    limits(tenant_env, tenantWrites=2)
    func, other = await raw(tenant_env), await raw(tenant_env, LIMITED)
    assert [func.revoke().status_code for _ in range(2)] == [200, 200]
    refused = other.revoke()
    assert refused.status_code == 429
    assert refused.headers["x-ms-throttle-scope"] == f"Tenant/Write/{LIMITED}/{tenant_env.state.tenant_id}"


async def test_reports_allow_five_requests_per_ten_seconds_per_app(tenant_env: TenantServer):
    call = await raw(tenant_env)
    statuses = [call("GET", REGISTRATION).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    advance(tenant_env, 2)  # one request back every 2 s
    assert call("GET", REGISTRATION).status_code == 200


async def test_the_resource_unit_limit_follows_the_tenant_size(tenant_env: TenantServer):
    def ru_limit() -> float:
        rules = control(tenant_env, "GET", "throttle").json()["rules"]
        return next(r["limit"] for r in rules if r["name"] == "resourceUnits")

    assert ru_limit() == 3500  # the fixture tenant is small
    control(tenant_env, "PUT", "throttle", {"tenantSize": "large"})
    assert ru_limit() == 8000
    control(tenant_env, "PUT", "throttle", {"tenantSize": "medium"})
    assert ru_limit() == 5000


async def test_a_request_without_a_token_is_not_throttled_but_refused_by_the_handler(tenant_env: TenantServer):
    limits(tenant_env, resourceUnits=1)
    for _ in range(3):
        assert httpx.get(f"{tenant_env.graph_url}/users/{U['tom']}").status_code == 401


async def test_throttling_can_be_switched_off(tenant_env: TenantServer):
    limits(tenant_env, writes=1)
    control(tenant_env, "PUT", "throttle", {"enabled": False})
    call = await raw(tenant_env)
    assert [call.revoke().status_code for _ in range(3)] == [200, 200, 200]


# --- Faults ----------------------------------------------------------------------------------------------------


async def test_the_sdks_retry_handler_retries_an_injected_503_and_succeeds(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": f"/users/{U['tom']}$", "status": 503, "remaining": 1}])
    user = await graph_client(tenant_env).users.by_user_id(U["tom"]).get()
    assert user.display_name == "Tom Target"
    log = control(tenant_env, "GET", f"requests?contains=/users/{U['tom']}").json()
    assert [e["status"] for e in log] == [503, 200]


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (429, "TooManyRequests", "2"),
        (500, "generalException", None),
        (503, "serviceNotAvailable", "2"),
        (504, "timeout", "2"),
    ],
)
async def test_injected_faults_answer_graphs_envelope(tenant_env: TenantServer, status, code, retry_after):
    control(
        tenant_env, "PUT", "faults", [{"prefix": "/v1.0/users/", "status": status, "remaining": 1, "retryAfter": 2}]
    )
    call = await raw(tenant_env)
    failed = call("GET", f"/users/{U['tom']}")
    assert failed.status_code == status
    assert failed.json()["error"]["code"] == code
    assert failed.headers.get("Retry-After") == retry_after
    assert call("GET", f"/users/{U['tom']}").status_code == 200  # only the next 1 request failed


async def test_a_fault_rule_with_a_method_leaves_other_methods_alone(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": "revokeSignInSessions$", "method": "POST", "status": 500}])
    call = await raw(tenant_env)
    assert call.revoke().status_code == 500
    assert call.revoke().status_code == 500  # no rate and no count: every matching request
    assert call("GET", f"/users/{U['tom']}").status_code == 200


async def test_a_fault_rate_with_a_seed_fails_the_same_requests_every_run(tenant_env: TenantServer):
    call = await raw(tenant_env)

    def run() -> list[int]:
        control(
            tenant_env,
            "PUT",
            "faults",
            {"faults": [{"pattern": "^/v1.0/users/", "status": 503, "rate": 0.5}], "seed": 7},
        )
        return [call("GET", f"/users/{U['tom']}").status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert set(first) == {200, 503}


async def test_a_dropped_connection_is_a_transport_error_for_httpx_and_the_sdk(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": f"/users/{U['tom']}$", "status": "drop", "remaining": 2}])
    call = await raw(tenant_env)
    with pytest.raises(httpx.TransportError):
        call("GET", f"/users/{U['tom']}")
    with pytest.raises(httpx.TransportError):
        await graph_client(tenant_env).users.by_user_id(U["tom"]).get()
    assert call("GET", f"/users/{U['tom']}").status_code == 200


# --- Latency ---------------------------------------------------------------------------------------------------


async def test_a_large_injected_latency_makes_a_client_with_a_small_timeout_time_out(tenant_env: TenantServer):
    control(tenant_env, "PUT", "latency", [{"pattern": f"/users/{U['tom']}$", "fixedMs": 10_000}])
    call = await raw(tenant_env, seconds=0.3)
    with pytest.raises(httpx.TimeoutException):
        call("GET", f"/users/{U['tom']}")
    assert call("GET", f"/users/{U['megan']}").status_code == 200  # other routes are not delayed


async def test_seeded_jitter_gives_the_same_delays_every_run(tenant_env: TenantServer):
    call = await raw(tenant_env)

    def run() -> list[float]:
        control(tenant_env, "DELETE", "requests")
        rule = {"prefix": "/v1.0/users/", "fixedMs": 1, "jitterMs": 10}
        control(tenant_env, "PUT", "latency", {"latency": [rule], "seed": 3})
        for _ in range(4):
            call("GET", f"/users/{U['tom']}")
        return [e["latencyMs"] for e in control(tenant_env, "GET", "requests?prefix=/v1.0/users/").json()]

    first = run()
    assert first == run()
    assert len(set(first)) == 4
    assert all(1 <= delay <= 11 for delay in first)
