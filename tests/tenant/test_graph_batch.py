"""POST /$batch (https://learn.microsoft.com/graph/json-batching) through msgraph-sdk's BatchRequestContent and httpx
with a managed-identity token: limits, validation, dependsOn and 424, per-item auth, throttling and faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from local.tenant import TenantServer
from tests.conftest import F
from tests.graph_clients import GRAPH_SCOPE, graph_client

U = F.U
MISSING = "00000000-0000-4000-8000-999999999999"


async def token(client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(GRAPH_SCOPE)).token


async def post_batch(
    tenant: TenantServer, requests: list[dict[str, Any]], client_id: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {await token(client_id)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{tenant.graph_url}/$batch", json={"requests": requests}, headers=headers)


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def control(tenant: TenantServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{tenant.url}/_control/{path}", json=body).raise_for_status()


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


def revoke(item_id: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "POST", "url": f"/users/{user}/revokeSignInSessions", **extra}


def sdk_item(tenant: TenantServer, item_id: str, path: str, depends_on: list[str] | None = None) -> BatchRequestItem:
    info = RequestInformation()
    info.http_method = Method.GET
    info.url = f"{tenant.graph_url}{path}"
    return BatchRequestItem(info, id=item_id, depends_on=depends_on)


# --- The SDK's batch path ------------------------------------------------------------------------------------


async def test_the_sdks_batch_request_content_gets_each_items_own_status_in_a_200(tenant_env: TenantServer):
    client = graph_client(tenant_env)
    content = BatchRequestContent(
        {
            "tom": sdk_item(tenant_env, "tom", f"/users/{U['tom']}"),
            "gone": sdk_item(tenant_env, "gone", f"/users/{MISSING}"),
        }
    )
    result = await client.batch.post(batch_request_content=content)
    assert result.get_response_status_codes() == {"tom": 200, "gone": 404}
    assert "json" in result.get_response_by_id("tom").headers["Content-Type"]


async def test_the_sdks_absolute_item_urls_are_read_relative_to_the_version_root(tenant_env: TenantServer):
    # msgraph_core 1.5 puts the full URL (http://host/v1.0/users/...) in each item; Graph accepts that form.
    client = graph_client(tenant_env)
    content = BatchRequestContent({"me": sdk_item(tenant_env, "me", f"/users/{U['megan']}/manager")})
    result = await client.batch.post(batch_request_content=content)
    assert result.get_response_status_codes() == {"me": 200}
    log = control(tenant_env, "GET", "requests?contains=/manager").json()
    assert [e["path"] for e in log] == [f"/v1.0/users/{U['megan']}/manager"]


async def test_the_sdks_snake_case_depends_on_is_ignored_so_the_dependent_still_runs(tenant_env: TenantServer):
    # msgraph_core serialises "depends_on" (msgraph-sdk-python-core#996); Graph knows only "dependsOn" and
    # ignores the rest, so no 424 comes back for a failed "dependency".
    client = graph_client(tenant_env)
    content = BatchRequestContent(
        {
            "gone": sdk_item(tenant_env, "gone", f"/users/{MISSING}"),
            "tom": sdk_item(tenant_env, "tom", f"/users/{U['tom']}", depends_on=["gone"]),
        }
    )
    result = await client.batch.post(batch_request_content=content)
    assert result.get_response_status_codes() == {"gone": 404, "tom": 200}


# --- Shape and validation ------------------------------------------------------------------------------------


async def test_a_raw_batch_answers_each_item_with_id_status_headers_and_body(tenant_env: TenantServer):
    answer = await post_batch(
        tenant_env, [get("1", f"/users/{U['tom']}?$select=id,displayName"), get("2", f"users/{MISSING}")]
    )
    items = by_id(answer)
    assert items["1"]["status"] == 200
    assert items["1"]["body"]["displayName"] == "Tom Target"
    assert items["1"]["headers"]["x-ms-resource-unit"] == "1"  # GET users/{id} 1, $select -1, never below 1
    assert items["2"]["status"] == 404
    assert items["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"


async def test_a_204_item_has_no_body(tenant_env: TenantServer):
    body = {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}
    phone = {"id": "add", "method": "POST", "url": f"/users/{U['nora']}/authentication/phoneMethods", "body": body}
    phone["headers"] = {"Content-Type": "application/json"}
    patch = {"id": "edit", "method": "PATCH", "url": f"/users/{U['nora']}/authentication/phoneMethods/{F.MOBILE_ID}"}
    patch |= {"body": {"phoneNumber": "+1 2065550101"}, "headers": {"content-type": "application/json"}}
    items = by_id(await post_batch(tenant_env, [phone, patch | {"dependsOn": ["add"]}]))
    assert items["add"]["status"] == 201
    assert items["edit"]["status"] == 204
    assert "body" not in items["edit"]


async def test_twenty_requests_are_accepted(tenant_env: TenantServer):
    answer = await post_batch(tenant_env, [get(str(i), f"/users/{U['tom']}") for i in range(20)])
    assert [item["status"] for item in answer.json()["responses"]] == [200] * 20


async def test_twenty_one_requests_are_a_400_for_the_whole_batch_and_none_runs(tenant_env: TenantServer):
    answer = await post_batch(tenant_env, [get(str(i), f"/users/{U['tom']}") for i in range(21)])
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert "20" in answer.json()["error"]["message"]
    assert control(tenant_env, "GET", f"requests?contains=/users/{U['tom']}").json() == []


async def test_ids_are_unique_without_regard_to_case(tenant_env: TenantServer):
    answer = await post_batch(tenant_env, [get("a", f"/users/{U['tom']}"), get("A", f"/users/{U['tom']}")])
    assert answer.status_code == 400
    assert "not unique" in answer.json()["error"]["message"]


@pytest.mark.parametrize("missing", ["id", "method", "url"])
async def test_id_method_and_url_are_required(tenant_env: TenantServer, missing: str):
    item = get("1", f"/users/{U['tom']}")
    del item[missing]
    answer = await post_batch(tenant_env, [item])
    assert answer.status_code == 400
    assert f"'{missing}'" in answer.json()["error"]["message"]


async def test_a_body_without_a_content_type_header_is_a_400(tenant_env: TenantServer):
    item = {"id": "1", "method": "POST", "url": f"/users/{U['nora']}/authentication/phoneMethods"}
    item["body"] = {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}
    answer = await post_batch(tenant_env, [item])
    assert answer.status_code == 400
    assert "Content-Type" in answer.json()["error"]["message"]
    assert len(tenant_env.state.users[U["nora"]]["methods"]) == 1  # nothing ran


async def test_an_item_url_that_repeats_the_version_is_a_400_for_that_item_only(tenant_env: TenantServer):
    items = by_id(await post_batch(tenant_env, [get("1", f"/v1.0/users/{U['tom']}"), get("2", f"/users/{U['tom']}")]))
    assert items["1"]["status"] == 400
    assert items["2"]["status"] == 200


async def test_a_batch_without_a_valid_token_is_a_401(tenant_env: TenantServer):
    answer = httpx.post(f"{tenant_env.graph_url}/$batch", json={"requests": [get("1", f"/users/{U['tom']}")]})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


async def test_the_beta_batch_runs_its_items_against_beta(tenant_env: TenantServer):
    headers = {"Authorization": f"Bearer {await token()}"}
    url = f"{tenant_env.url}/beta/$batch"
    body = {"requests": [get("1", f"/users/{U['tom']}/authentication/hardwareOathMethods")]}
    answer = httpx.post(url, json=body, headers=headers, timeout=30)
    assert by_id(answer)["1"]["status"] == 200
    assert control(tenant_env, "GET", "requests?contains=hardwareOath").json()[0]["path"].startswith("/beta/")


# --- dependsOn -----------------------------------------------------------------------------------------------


async def test_depends_on_runs_the_create_before_the_read(tenant_env: TenantServer):
    # The create is slowed down (a slow service behind Graph): only dependsOn keeps the read from overtaking it.
    slow = [{"pattern": "phoneMethods$", "method": "POST", "fixedMs": 300, "batchItems": True}]
    control(tenant_env, "PUT", "latency", slow)
    create = {"id": "create", "method": "POST", "url": f"/users/{U['nora']}/authentication/phoneMethods"}
    create |= {
        "body": {"phoneNumber": "+1 2065550100", "phoneType": "mobile"},
        "headers": {"Content-Type": "application/json"},
    }
    read = get("read", f"/users/{U['nora']}/authentication/phoneMethods", dependsOn=["create"])
    items = by_id(await post_batch(tenant_env, [create, read]))
    assert items["create"]["status"] == 201
    assert [m["phoneNumber"] for m in items["read"]["body"]["value"]] == ["+1 2065550100"]


async def test_a_failed_dependency_gives_424_and_the_dependent_never_runs(tenant_env: TenantServer):
    delete = {"id": "delete", "method": "DELETE", "url": f"/users/{U['tom']}/authentication/emailMethods/{F.EMAIL_ID}"}
    items = by_id(await post_batch(tenant_env, [get("check", f"/users/{MISSING}"), delete | {"dependsOn": ["check"]}]))
    assert items["check"]["status"] == 404
    assert items["delete"]["status"] == 424
    assert items["delete"]["body"]["error"]["code"] == "FailedDependency"
    assert control(tenant_env, "GET", "requests?method=DELETE").json() == []
    assert F.EMAIL_ID in {m["id"] for m in tenant_env.state.users[U["tom"]]["methods"]}


async def test_a_424_propagates_down_a_chain(tenant_env: TenantServer):
    chain = [get("1", f"/users/{MISSING}"), get("2", f"/users/{U['tom']}", dependsOn=["1"])]
    chain.append(get("3", f"/users/{U['tom']}", dependsOn=["2"]))
    items = by_id(await post_batch(tenant_env, chain))
    assert [items[i]["status"] for i in "123"] == [404, 424, 424]


async def test_depends_on_is_matched_without_regard_to_case(tenant_env: TenantServer):
    items = by_id(
        await post_batch(tenant_env, [get("First", f"/users/{MISSING}"), get("2", "/users", dependsOn=["first"])])
    )
    assert items["2"]["status"] == 424


@pytest.mark.parametrize("dependency", ["nope", "2"])
async def test_a_dependency_that_is_unknown_or_comes_later_is_a_400(tenant_env: TenantServer, dependency: str):
    answer = await post_batch(tenant_env, [get("1", "/users", dependsOn=[dependency]), get("2", "/users")])
    assert answer.status_code == 400
    assert "Invalid dependency" in answer.json()["error"]["message"]


async def test_strict_sequencing_refuses_a_batch_that_is_neither_fully_sequential_nor_parallel(
    tenant_env: TenantServer,
):
    control(tenant_env, "PUT", "batch", {"sequencing": "strict"})
    mixed = [get("1", "/users"), get("2", "/users"), get("3", "/users", dependsOn=["1", "2"])]
    answer = await post_batch(tenant_env, mixed)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Batch should be either fully sequential or fully parallel."
    sequential = [get("1", "/users"), get("2", "/users", dependsOn=["1"]), get("3", "/users", dependsOn=["2"])]
    assert {i["status"] for i in by_id(await post_batch(tenant_env, sequential)).values()} == {200}


# --- Same pipeline as a direct call --------------------------------------------------------------------------


async def test_items_use_the_batchs_token_so_a_missing_permission_is_a_403_item(tenant_env: TenantServer):
    items = by_id(
        await post_batch(
            tenant_env, [get("read", f"/users/{U['tom']}"), revoke("write", U["tom"])], F.APP["limited"][0]
        )
    )
    assert items["read"]["status"] == 200
    assert items["write"]["status"] == 403
    assert items["write"]["body"]["error"]["code"] == "Authorization_RequestDenied"


async def test_each_item_is_throttled_on_its_own_with_429_and_retry_after_inside_a_200(tenant_env: TenantServer):
    control(tenant_env, "PUT", "throttle", {"limits": {"writes": 5}})
    users = ["alex", "megan", "tom", "priya", "nora", "dana", "gus"]
    answer = await post_batch(tenant_env, [revoke(name, U[name]) for name in users])
    statuses = sorted(item["status"] for item in by_id(answer).values())
    assert statuses == [200] * 5 + [429] * 2
    throttled = [item for item in answer.json()["responses"] if item["status"] == 429]
    assert all(int(item["headers"]["Retry-After"]) >= 1 for item in throttled)
    assert {item["body"]["error"]["code"] for item in throttled} == {"TooManyRequests"}


async def test_a_fault_hits_only_the_item_it_matches(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": f"/users/{U['tom']}$", "status": 503, "remaining": 1}])
    items = by_id(
        await post_batch(tenant_env, [get("tom", f"/users/{U['tom']}"), get("megan", f"/users/{U['megan']}")])
    )
    assert items["tom"]["status"] == 503
    assert items["tom"]["headers"]["Retry-After"] == "1"
    assert items["megan"]["status"] == 200


async def test_a_dropped_connection_on_an_item_drops_the_batchs_connection(tenant_env: TenantServer):
    control(tenant_env, "PUT", "faults", [{"pattern": f"/users/{U['tom']}$", "status": "drop", "remaining": 1}])
    with pytest.raises(httpx.TransportError):
        await post_batch(tenant_env, [get("tom", f"/users/{U['tom']}")])


async def test_the_batch_pays_latency_once_and_its_items_are_logged_with_their_ids(tenant_env: TenantServer):
    control(tenant_env, "PUT", "latency", [{"pattern": "^/v1.0/", "fixedMs": 20}])
    await post_batch(tenant_env, [get("a", f"/users/{U['tom']}"), get("b", f"/users/{U['megan']}")])
    log = control(tenant_env, "GET", "requests?prefix=/v1.0/").json()
    outer = [e for e in log if e["path"] == "/v1.0/$batch"]
    inner = {e["batchItem"]: e for e in log if "batchItem" in e}
    assert [e["latencyMs"] for e in outer] == [20]
    assert set(inner) == {"a", "b"}
    assert {e["latencyMs"] for e in inner.values()} == {0}
    assert {e["appid"] for e in log} == {F.APP["func"][0]}
