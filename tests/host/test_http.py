"""The dev host serves HTTP functions like the Functions host: routes, params, methods, keys and conversions."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx

from local.host import DevHost
from local.host.loader import FunctionTimeout
from tests.host.conftest import KEY, http_only_host


def test_route_parameters_query_headers_and_body_reach_the_function_and_its_response_comes_back(host: DevHost):
    response = httpx.put(f"{host.url}/api/items/42/parts/wheel?colour=red", content=b"hello", headers={"x-sample": "s"})
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "method": "PUT",
        "url": f"{host.url}/api/items/42/parts/wheel?colour=red",
        "params": {"id": "42", "part": "wheel"},
        "query": {"colour": "red"},
        "body": "hello",
        "header": "s",
    }


def test_an_optional_route_parameter_may_be_left_out(host: DevHost):
    assert httpx.get(f"{host.url}/api/items/7/parts").json()["params"] == {"id": "7"}


def test_a_guid_constraint_rejects_other_values(host: DevHost):
    key = str(uuid.uuid4())
    assert httpx.get(f"{host.url}/api/guid/{key}").text == key
    assert httpx.get(f"{host.url}/api/guid/not-a-guid").status_code == 404


def test_int_and_min_constraints_apply_together_and_a_literal_segment_wins_over_a_parameter(host: DevHost):
    assert httpx.get(f"{host.url}/api/pages/3").text == "page 3"
    assert httpx.get(f"{host.url}/api/pages/0").status_code == 404
    assert httpx.get(f"{host.url}/api/pages/x").status_code == 404
    assert httpx.get(f"{host.url}/api/pages/latest").text == "latest"


def test_a_default_route_value_fills_a_missing_parameter(host: DevHost):
    assert httpx.get(f"{host.url}/api/greet").text == "<p>hello world</p>"
    assert httpx.get(f"{host.url}/api/greet/ann").text == "<p>hello ann</p>"


def test_unknown_routes_are_404_and_wrong_methods_405_with_allow(host: DevHost):
    assert httpx.get(f"{host.url}/api/nowhere").status_code == 404
    assert httpx.get(f"{host.url}/items/1/parts/x").status_code == 404  # outside the route prefix
    response = httpx.delete(f"{host.url}/api/items/1/parts/x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET,PUT"


def test_a_function_without_methods_answers_every_method(host: DevHost):
    for method in ("GET", "POST", "DELETE", "PATCH"):
        assert httpx.request(method, f"{host.url}/api/greet/x").status_code == 200


def test_function_level_routes_need_the_key_in_code_or_header(host: DevHost):
    assert httpx.get(f"{host.url}/api/secret").status_code == 401
    assert httpx.get(f"{host.url}/api/secret?code=wrong").status_code == 401
    assert httpx.get(f"{host.url}/api/secret", headers={"x-functions-key": "wrong"}).status_code == 401
    assert httpx.get(f"{host.url}/api/secret?code={KEY}").status_code == 200
    assert httpx.get(f"{host.url}/api/secret", headers={"x-functions-key": KEY}).status_code == 200


def test_admin_level_routes_need_the_key_too(host: DevHost):
    assert httpx.get(f"{host.url}/api/admin-only").status_code == 401
    response = httpx.get(f"{host.url}/api/admin-only?code={KEY}")
    assert (response.status_code, response.text) == (200, "admin")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"  # a str return is text/plain


def test_a_sync_function_runs_on_a_worker_thread_and_reads_the_body(host: DevHost):
    response = httpx.post(f"{host.url}/api/secret", content=b"payload", headers={"x-functions-key": KEY})
    assert response.json() == {"thread": response.json()["thread"], "body": "payload"}
    assert response.json()["thread"].startswith("devhost-worker")


def test_text_mimetypes_carry_the_charset_and_set_cookie_headers_stay_separate(host: DevHost):
    assert httpx.get(f"{host.url}/api/greet").headers["content-type"] == "text/html; charset=iso-8859-1"
    response = httpx.get(f"{host.url}/api/cookies")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == b"\x00\x01"
    assert [c.split(";")[0] for c in response.headers.get_list("set-cookie")] == ["a=1", "b=2"]


def test_a_function_that_declares_context_gets_its_name_and_invocation_id(host: DevHost):
    seen = httpx.get(f"{host.url}/api/context").json()
    assert seen["function"] == "with_context"
    assert uuid.UUID(seen["invocation"])


def test_an_exception_in_a_function_is_a_500_and_its_traceback_is_logged(host: DevHost, caplog):
    caplog.set_level(logging.INFO, logger="local.host")
    assert httpx.get(f"{host.url}/api/boom").status_code == 500
    failed = [r for r in caplog.records if "Executed 'Functions.boom' (Failed" in r.getMessage()]
    assert failed
    assert failed[0].exc_info
    assert isinstance(failed[0].exc_info[1], RuntimeError)


def test_a_function_running_past_function_timeout_fails_with_500(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="local.host")
    options = {"functionTimeout": "00:00:00.300"}
    with http_only_host(tmp_path, **options) as host:
        assert httpx.get(f"{host.url}/api/slow?s=5").status_code == 500
        assert httpx.get(f"{host.url}/api/slow?s=0").text == "done"
    timeouts = [r.exc_info[1] for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], FunctionTimeout)]
    assert timeouts
    assert "exceeded by function 'Functions.slow'" in str(timeouts[0])


def test_the_route_prefix_comes_from_host_json(tmp_path: Path):
    options = {"routePrefix": "v1"}
    with http_only_host(tmp_path, **options) as host:
        assert httpx.get(f"{host.url}/v1/guid/{uuid.uuid4()}").status_code == 200
        assert httpx.get(f"{host.url}/api/guid/{uuid.uuid4()}").status_code == 404


def test_start_up_lists_each_function_like_func_start(caplog, tmp_path: Path):
    caplog.set_level(logging.INFO, logger="local.host")
    with http_only_host(tmp_path) as h:
        lines = [r.getMessage().strip() for r in caplog.records]
        assert f"items: [GET,PUT] {h.url}/api/items/{{id}}/parts/{{part?}}" in lines
        assert f"greet: [*] {h.url}/api/greet/{{name=world}}" in lines
        assert "on_message: queueTrigger" in lines
        assert "nightly: timerTrigger" in lines


def test_a_key_is_generated_and_logged_when_none_is_configured(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="local.host")
    with http_only_host(tmp_path) as h:
        assert h.key_generated
        assert len(h.function_key) >= 24
        assert any(h.function_key in r.getMessage() for r in caplog.records)
        assert httpx.get(f"{h.url}/api/secret?code={h.function_key}").status_code == 200
        assert httpx.get(f"{h.url}/api/admin-only?code={h.function_key}").status_code == 200
