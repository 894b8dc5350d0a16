"""Conformance of the local tenant's JSON batching, throttling and fault/latency injection with Microsoft Graph,
driven only through real clients (msgraph-sdk and raw httpx with a ManagedIdentityCredential token) plus the
tenant's /_control API. Sources: https://learn.microsoft.com/graph/json-batching,
https://learn.microsoft.com/graph/throttling, https://learn.microsoft.com/graph/throttling-limits,
https://learn.microsoft.com/graph/errors

msgraph-sdk's typed batching (`client.batch` with msgraph_core's BatchRequestContent) is broken in this
environment: msgraph-core 1.5.2's batch_request_item.py imports the `deprecated` package, which msgraph-core does
not declare as a dependency, so importing BatchRequestContent raises ModuleNotFoundError. The batch tests
therefore post the documented JSON with httpx.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential

from local.tenant import TenantServer
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U = F.U
JSON = {"Content-Type": "application/json"}


class Graph:
    """httpx against the tenant: Graph calls with a ManagedIdentityCredential token, and its control API."""

    def __init__(self, tenant: TenantServer):
        self.tenant = tenant
        self._token: str | None = None

    async def token(self) -> str:
        if self._token is None:
            async with ManagedIdentityCredential() as credential:
                self._token = (await credential.get_token(GRAPH_SCOPE)).token
        return self._token

    async def __call__(self, method: str, path: str, body: Any = None, timeout_s: float = 10) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        async with httpx.AsyncClient(base_url=self.tenant.graph_url, timeout=timeout_s) as client:
            return await client.request(method, path, json=body, headers=headers)

    async def batch(self, requests: list[dict[str, Any]]) -> httpx.Response:
        return await self("POST", "/$batch", {"requests": requests})

    async def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.tenant.url) as client:
            response = await client.request(method, f"/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response

    async def limit(self, rule: str, value: int) -> None:
        """Lower one throttling limit ("writes" per 150 s or "resourceUnits" per 10 s) through PUT /_control/throttle.

        The control API names its rules (resourceUnits, writes, ...) when GET /_control/throttle lists "rules";
        earlier versions took the limits as ruPer10s / writesPer150s.
        """
        described = (await self.control("GET", "/throttle")).json()
        if "rules" not in described:
            rule = {"writes": "writesPer150s", "resourceUnits": "ruPer10s"}[rule]
        await self.control("PUT", "/throttle", {"limits": {rule: value}})


@pytest.fixture
def graph(tenant_env: TenantServer) -> Graph:
    return Graph(tenant_env)


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


def revoke(item_id: str, user: str) -> dict[str, Any]:
    return {"id": item_id, "method": "POST", "url": f"/users/{U[user]}/revokeSignInSessions"}


# --- Batch validation -----------------------------------------------------------------------------------


async def test_a_batch_of_21_requests_is_400(graph: Graph):
    response = await graph.batch([get(str(i), f"/users/{U['tom']}") for i in range(21)])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_a_batch_of_20_requests_is_answered_item_by_item(graph: Graph):
    items = by_id(await graph.batch([get(str(i), f"/users/{U['tom']}") for i in range(20)]))
    assert sorted(items, key=int) == [str(i) for i in range(20)]
    assert {item["status"] for item in items.values()} == {200}


async def test_duplicate_request_ids_are_400(graph: Graph):
    response = await graph.batch([get("1", f"/users/{U['tom']}"), get("1", f"/users/{U['megan']}")])
    assert response.status_code == 400


async def test_a_request_body_without_content_type_is_400(graph: Graph):
    phone = {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}
    url = f"/users/{U['nora']}/authentication/phoneMethods"
    refused = await graph.batch([{"id": "1", "method": "POST", "url": url, "body": phone}])
    assert refused.status_code == 400
    accepted = await graph.batch([{"id": "1", "method": "POST", "url": url, "body": phone, "headers": JSON}])
    assert by_id(accepted)["1"]["status"] == 201


# --- Batch execution ------------------------------------------------------------------------------------


async def test_depends_on_runs_posts_in_order_before_the_get_that_names_them(graph: Graph):
    # An alternateMobile needs the mobile to exist, so "alternate" succeeds only after "mobile" has finished.
    url = f"/users/{U['nora']}/authentication/phoneMethods"

    def phone(item_id: str, kind: str, number: str, after: list[str]) -> dict[str, Any]:
        body = {"phoneNumber": number, "phoneType": kind}
        return {"id": item_id, "method": "POST", "url": url, "body": body, "headers": JSON, "dependsOn": after}

    items = by_id(
        await graph.batch(
            [
                phone("mobile", "mobile", "+1 2065550100", []),
                phone("alternate", "alternateMobile", "+1 2065550101", ["mobile"]),
                get("read", url, dependsOn=["alternate"]),
            ]
        )
    )
    assert (items["mobile"]["status"], items["alternate"]["status"]) == (201, 201)
    assert sorted(p["phoneType"] for p in items["read"]["body"]["value"]) == ["alternateMobile", "mobile"]


async def test_depends_on_runs_a_patch_before_the_get_that_names_it(graph: Graph):
    url = f"/users/{U['priya']}/authentication/phoneMethods/{F.MOBILE_ID}"
    items = by_id(
        await graph.batch(
            [
                {
                    "id": "update",
                    "method": "PATCH",
                    "url": url,
                    "body": {"phoneNumber": "+44 2079460099"},
                    "headers": JSON,
                },
                get("read", url, dependsOn=["update"]),
            ]
        )
    )
    assert items["update"]["status"] == 204
    assert items["read"]["body"]["phoneNumber"] == "+44 2079460099"


async def test_a_failed_dependency_gives_424_and_the_dependent_request_does_not_run(graph: Graph):
    phones = f"/users/{U['nora']}/authentication/phoneMethods"
    items = by_id(
        await graph.batch(
            [
                {"id": "1", "method": "POST", "url": phones, "body": {"phoneNumber": "2065550100"}, "headers": JSON},
                {
                    "id": "2",
                    "method": "POST",
                    "url": f"/users/{U['nora']}/authentication/temporaryAccessPassMethods",
                    "body": {},
                    "headers": JSON,
                    "dependsOn": ["1"],
                },
            ]
        )
    )
    assert (items["1"]["status"], items["2"]["status"]) == (400, 424)
    taps = await graph("GET", f"/users/{U['nora']}/authentication/temporaryAccessPassMethods")
    assert taps.json()["value"] == []


async def test_the_batch_answers_200_when_items_fail_and_each_item_carries_graphs_envelope(graph: Graph):
    missing = str(uuid.uuid4())
    items = by_id(await graph.batch([get("ok", f"/users/{U['tom']}"), get("missing", f"/users/{missing}")]))
    assert items["ok"]["status"] == 200
    assert items["ok"]["body"]["id"] == U["tom"]
    assert items["missing"]["status"] == 404
    assert items["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"


async def test_items_are_throttled_one_by_one_inside_a_200_batch(graph: Graph):
    await graph.limit("writes", 2)
    response = await graph.batch([revoke("1", "tom"), revoke("2", "megan"), revoke("3", "priya")])
    statuses = sorted(item["status"] for item in by_id(response).values())
    assert statuses == [200, 200, 429]


async def test_a_throttled_batch_item_carries_retry_after_and_the_error_envelope(graph: Graph):
    await graph.limit("writes", 1)
    items = by_id(await graph.batch([revoke("1", "tom"), revoke("2", "megan")]))
    [throttled] = [item for item in items.values() if item["status"] == 429]
    headers = {k.lower(): v for k, v in throttled["headers"].items()}
    assert int(headers["retry-after"]) >= 1
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


async def test_reads_in_a_batch_are_not_limited_by_the_write_bucket(graph: Graph):
    await graph.limit("writes", 1)
    items = by_id(await graph.batch([get(str(i), f"/users/{U['tom']}") for i in range(5)]))
    assert {item["status"] for item in items.values()} == {200}


# --- Throttling -----------------------------------------------------------------------------------------


async def test_an_exhausted_write_bucket_gives_429_with_retry_after_and_graphs_envelope(graph: Graph):
    await graph.limit("writes", 1)
    assert (await graph("POST", f"/users/{U['tom']}/revokeSignInSessions")).status_code == 200
    response = await graph("POST", f"/users/{U['tom']}/revokeSignInSessions")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()["error"]
    assert body["code"] == "TooManyRequests"
    assert {"date", "request-id", "client-request-id"} <= set(body["innerError"])


async def test_the_write_bucket_refills_when_the_tenant_clock_advances(graph: Graph):
    await graph.limit("writes", 1)
    path = f"/users/{U['tom']}/revokeSignInSessions"
    assert (await graph("POST", path)).status_code == 200
    assert (await graph("POST", path)).status_code == 429
    await graph.control("POST", "/clock", {"advanceSeconds": 200})
    assert (await graph("POST", path)).status_code == 200


async def test_the_ru_bucket_throttles_reads(graph: Graph):
    await graph.limit("resourceUnits", 1)
    statuses = [(await graph("GET", f"/users/{U['tom']}")).status_code for _ in range(2)]
    assert statuses == [200, 429]


# --- Faults and latency ---------------------------------------------------------------------------------


async def test_msgraph_sdk_retries_an_injected_503_and_succeeds(tenant_env: TenantServer, graph: Graph):
    path = f"/v1.0/users/{U['tom']}"
    await graph.control("PUT", "/faults", [{"pattern": f"^{path}$", "status": 503, "remaining": 1, "retryAfter": 1}])
    user = await graph_client(tenant_env).users.by_user_id(U["tom"]).get()
    assert user.id == U["tom"]
    log = (await graph.control("GET", "/requests")).json()
    assert [entry["status"] for entry in log if entry["path"] == path] == [503, 200]


async def test_raw_httpx_sees_the_injected_503_with_graphs_envelope(graph: Graph):
    await graph.control("PUT", "/faults", [{"pattern": "/users/", "status": 503, "remaining": 1, "retryAfter": 2}])
    response = await graph("GET", f"/users/{U['tom']}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    body = response.json()["error"]
    assert body["code"]  # Graph documents no single code for a 503
    assert body["message"]
    uuid.UUID(body["innerError"]["request-id"])
    assert (await graph("GET", f"/users/{U['tom']}")).status_code == 200  # only the next one request


async def test_a_dropped_connection_surfaces_as_a_transport_error_for_raw_httpx(graph: Graph):
    await graph.token()
    await graph.control("PUT", "/faults", [{"pattern": "/users/", "status": 0, "remaining": 1}])
    with pytest.raises(httpx.TransportError):
        await graph("GET", f"/users/{U['tom']}")


async def test_injected_latency_makes_a_client_with_a_small_timeout_time_out(graph: Graph):
    await graph.token()  # the identity endpoint is not delayed; fetch the token before the rule applies
    await graph.control("PUT", "/latency", [{"pattern": "^/v1.0/users/", "fixedMs": 1500}])
    with pytest.raises(httpx.TimeoutException):
        await graph("GET", f"/users/{U['tom']}", timeout_s=0.2)
    await graph.control("DELETE", "/latency")
    assert (await graph("GET", f"/users/{U['tom']}", timeout_s=5)).status_code == 200
