"""The local tenant's general control API (/_control): health, clock, fault/latency/throttle rules, the request
log and reset-throttle, driven with httpx; Graph traffic for it comes from msgraph-sdk and httpx with MI tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential

from local.tenant import TenantServer
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U = F.U
FUNC = F.APP["func"][0]


def control(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{tenant.url}/_control/{path}", json=body)


async def bearer() -> dict[str, str]:
    async with ManagedIdentityCredential() as credential:
        return {"Authorization": f"Bearer {(await credential.get_token(GRAPH_SCOPE)).token}"}


async def test_health_answers_ok_with_the_tenant_id(tenant: TenantServer):
    answer = control(tenant, "GET", "health")
    assert answer.json() == {"status": "ok", "tenantId": tenant.state.tenant_id}


async def test_the_clock_advances_and_can_be_set_to_an_offset(tenant: TenantServer):
    before = datetime.fromisoformat(control(tenant, "GET", "clock").json()["now"])
    advanced = control(tenant, "POST", "clock", {"advanceSeconds": 3600}).json()
    assert advanced["offsetSeconds"] == 3600
    assert (datetime.fromisoformat(advanced["now"]) - before).total_seconds() >= 3600
    assert control(tenant, "POST", "clock", {"advanceSeconds": 60}).json()["offsetSeconds"] == 3660
    assert control(tenant, "POST", "clock", {"offsetSeconds": 10}).json()["offsetSeconds"] == 10
    assert tenant.state.clock_offset.total_seconds() == 10


@pytest.mark.parametrize("body", [{}, {"advanceSeconds": "soon"}, None])
async def test_a_clock_change_without_a_number_of_seconds_is_a_400(tenant: TenantServer, body: Any):
    assert control(tenant, "POST", "clock", body).status_code == 400
    assert tenant.state.clock_offset.total_seconds() == 0


async def test_fault_rules_are_replaced_listed_and_cleared(tenant: TenantServer):
    rules = [{"pattern": "/manager$", "status": 503, "remaining": 2}, {"prefix": "/v1.0/groups", "status": "drop"}]
    put = control(tenant, "PUT", "faults", rules)
    assert put.status_code == 200
    listed = control(tenant, "GET", "faults").json()
    assert [(r["status"], r["remaining"], r["rate"]) for r in listed] == [(503, 2, 0.0), ("drop", None, 1.0)]
    assert control(tenant, "DELETE", "faults").status_code == 204
    assert control(tenant, "GET", "faults").json() == []


@pytest.mark.parametrize("rule", [{"status": 418}, {"status": 503, "rate": 2}, "not a rule"])
async def test_an_invalid_fault_rule_is_a_400_and_keeps_the_old_rules(tenant: TenantServer, rule: Any):
    control(tenant, "PUT", "faults", [{"pattern": "x", "status": 500}])
    assert control(tenant, "PUT", "faults", [rule]).status_code == 400
    assert [r["pattern"] for r in control(tenant, "GET", "faults").json()] == ["x"]


async def test_a_fault_rule_counts_how_often_it_fired(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": f"/users/{U['tom']}$", "status": 500, "remaining": 1}])
    headers = await bearer()
    for _ in range(2):
        httpx.get(f"{tenant_env.graph_url}/users/{U['tom']}", headers=headers)
    assert control(tenant_env, "GET", "faults").json()[0]["fired"] == 1


async def test_latency_rules_are_replaced_listed_and_cleared(tenant: TenantServer):
    rule = {"pattern": "^/v1.0/", "fixedMs": 5, "jitterMs": 2}
    control(tenant, "PUT", "latency", {"latency": [rule], "seed": 1})
    assert control(tenant, "GET", "latency").json() == [rule | {"prefix": "", "method": None, "batchItems": False}]
    assert control(tenant, "DELETE", "latency").status_code == 204
    assert control(tenant, "GET", "latency").json() == []


async def test_throttle_shows_rules_buckets_and_counters_per_app(tenant_env: TenantServer):
    control(tenant_env, "PUT", "throttle", {"limits": {"writes": 1}})
    headers = await bearer()
    for _ in range(2):
        httpx.post(f"{tenant_env.graph_url}/users/{U['tom']}/revokeSignInSessions", headers=headers)
    state = control(tenant_env, "GET", "throttle").json()
    rules = {r["name"]: (r["limit"], r["windowSeconds"]) for r in state["rules"]}
    assert rules == {"resourceUnits": (3500, 10), "writes": (1, 150), "tenantWrites": (18000, 300), "reports": (5, 10)}
    writes = next(b for b in state["buckets"] if b["rule"] == "writes")
    assert writes["app"] == FUNC
    assert writes["level"] < 1
    assert state["counters"][FUNC] == {"requests": 2, "throttled": 1, "429": 1}


async def test_throttle_windows_can_be_shortened_and_unknown_rules_are_a_400(tenant: TenantServer):
    answer = control(tenant, "PUT", "throttle", {"windows": {"writes": 10}}).json()
    assert next(r["windowSeconds"] for r in answer["rules"] if r["name"] == "writes") == 10
    assert control(tenant, "PUT", "throttle", {"limits": {"everything": 1}}).status_code == 400
    assert control(tenant, "PUT", "throttle", {"limits": {"writes": 0}}).status_code == 400


async def test_delete_throttle_restores_the_documented_limits(tenant: TenantServer):
    control(tenant, "PUT", "throttle", {"limits": {"writes": 1}, "enabled": False})
    restored = control(tenant, "DELETE", "throttle").json()
    assert restored["enabled"] is True
    assert next(r["limit"] for r in restored["rules"] if r["name"] == "writes") == 3000


async def test_reset_throttle_refills_the_buckets_and_clears_the_counters(tenant_env: TenantServer):
    control(tenant_env, "PUT", "throttle", {"limits": {"writes": 1}})
    headers = await bearer()
    url = f"{tenant_env.graph_url}/users/{U['tom']}/revokeSignInSessions"
    assert [httpx.post(url, headers=headers).status_code for _ in range(2)] == [200, 429]
    assert control(tenant_env, "POST", "reset-throttle").status_code == 204
    assert control(tenant_env, "GET", "throttle").json()["counters"] == {}
    assert httpx.post(url, headers=headers).status_code == 200


async def test_the_request_log_records_what_the_sdk_did_without_bodies_or_tokens(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    await client.users.by_user_id(U["tom"]).get()
    headers = await bearer()
    secret = "+1 2065550199"
    body = {"phoneNumber": secret, "phoneType": "mobile"}
    httpx.post(f"{tenant_env.graph_url}/users/{U['nora']}/authentication/phoneMethods", json=body, headers=headers)
    httpx.get(f"{tenant_env.graph_url}/users?$select=id", headers=headers)
    log = control(tenant_env, "GET", "requests?prefix=/v1.0/").json()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", f"/v1.0/users/{U['tom']}", 200),
        ("POST", f"/v1.0/users/{U['nora']}/authentication/phoneMethods", 201),
        ("GET", "/v1.0/users", 200),
    ]
    assert {e["appid"] for e in log} == {FUNC}
    assert log[2]["query"] == "$select=id"
    assert all(datetime.fromisoformat(e["time"]) for e in log)
    text = control(tenant_env, "GET", "requests").text
    assert secret not in text
    assert headers["Authorization"][7:] not in text


async def test_the_request_log_filters_by_method_and_path_and_can_be_emptied(tenant_env: TenantServer):
    headers = await bearer()
    httpx.get(f"{tenant_env.graph_url}/users/{U['tom']}", headers=headers)
    httpx.post(f"{tenant_env.graph_url}/users/{U['tom']}/revokeSignInSessions", headers=headers)
    assert [e["method"] for e in control(tenant_env, "GET", "requests?method=post").json()] == ["POST"]
    assert len(control(tenant_env, "GET", "requests?contains=revokeSignInSessions").json()) == 1
    assert len(control(tenant_env, "GET", "requests?prefix=/v1.0/&limit=1").json()) == 1
    assert control(tenant_env, "DELETE", "requests").status_code == 204
    assert control(tenant_env, "GET", "requests").json() == []


async def test_control_calls_are_not_logged_throttled_or_faulted(tenant: TenantServer):
    control(tenant, "PUT", "faults", [{"pattern": ".", "status": 500}])
    assert control(tenant, "GET", "health").status_code == 200
    assert control(tenant, "GET", "requests").json() == []


async def test_batch_sequencing_is_any_by_default_and_only_any_or_strict(tenant: TenantServer):
    assert control(tenant, "GET", "batch").json() == {"sequencing": "any"}
    assert control(tenant, "PUT", "batch", {"sequencing": "strict"}).json() == {"sequencing": "strict"}
    assert control(tenant, "PUT", "batch", {"sequencing": "sometimes"}).status_code == 400
