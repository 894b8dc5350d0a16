"""The dev host serves HTTP functions like the Functions host and runs queue and timer triggers from Azurite."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from local.host import DevHost
from local.host.timers import next_run
from tests.host import sample_app

HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {"maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00", "maxDequeueCount": 5},
    },
}


@pytest.fixture
def host(azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DevHost]:
    """The dev host on a free port serving sample_app, its queue on Azurite, with a known function key."""
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(HOST_JSON))
    settings = tmp_path / "local.settings.json"
    queue = f"sample-{uuid.uuid4().hex[:8]}"
    settings.write_text(json.dumps({"Values": {"SAMPLE_QUEUE": queue, "SampleStorage": azurite.connection_string}}))
    monkeypatch.delenv("SAMPLE_QUEUE", raising=False)
    sample_app.calls["queue"].clear()
    sample_app.calls["timer"].clear()
    sample_app.fail_queue_bodies.clear()
    with DevHost(
        app=sample_app.app, settings_file=settings, host_json=host_json, port=0, function_key="test-key"
    ) as running:
        yield running


def send(host: DevHost, azurite, body: bytes) -> None:
    queue = QueueClient.from_connection_string(azurite.connection_string, host.pollers[0].queue_name)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    queue.send_message(base64.b64encode(body).decode())


def wait_for(predicate, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_route_parameters_query_headers_and_body_reach_the_function(host: DevHost):
    response = httpx.put(f"{host.url}/api/items/42/parts/wheel?colour=red", content=b"hello", headers={"x-sample": "s"})
    assert response.status_code == 200
    assert response.headers["x-echo"] == "yes"
    assert response.json() == {
        "method": "PUT",
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


def test_unknown_routes_are_404_and_wrong_methods_405(host: DevHost):
    assert httpx.get(f"{host.url}/api/nowhere").status_code == 404
    assert httpx.delete(f"{host.url}/api/items/1/parts/x").status_code == 405


def test_function_level_routes_need_the_key_in_code_or_header(host: DevHost):
    assert httpx.get(f"{host.url}/api/secret").status_code == 401
    assert httpx.get(f"{host.url}/api/secret?code=wrong").status_code == 401
    assert httpx.get(f"{host.url}/api/secret?code=test-key").text == "behind a key"
    assert httpx.get(f"{host.url}/api/secret", headers={"x-functions-key": "test-key"}).status_code == 200


def test_an_exception_in_a_function_is_a_500(host: DevHost):
    assert httpx.get(f"{host.url}/api/boom").status_code == 500


def test_a_base64_queue_message_is_processed_once_and_deleted(host: DevHost, azurite):
    send(host, azurite, b'{"n": 1}')
    wait_for(lambda: sample_app.calls["queue"])
    assert sample_app.calls["queue"] == [(b'{"n": 1}', 1)]
    queue = QueueClient.from_connection_string(azurite.connection_string, host.pollers[0].queue_name)
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0)


def test_a_failing_message_is_tried_five_times_then_moved_to_poison(host: DevHost, azurite):
    sample_app.fail_queue_bodies.add(b"bad")
    send(host, azurite, b"bad")
    poison = QueueClient.from_connection_string(azurite.connection_string, f"{host.pollers[0].queue_name}-poison")
    moved = wait_for(lambda: _peek(poison))
    assert [base64.b64decode(m.content) for m in moved] == [b"bad"]
    assert [count for body, count in sample_app.calls["queue"] if body == b"bad"] == [1, 2, 3, 4, 5]


def _peek(queue: QueueClient):
    try:
        return queue.peek_messages(max_messages=5)
    except Exception:
        return None


def test_a_timer_runs_on_demand_through_the_admin_api(host: DevHost):
    assert httpx.post(f"{host.url}/admin/functions/nightly", json={}).status_code == 401
    response = httpx.post(f"{host.url}/admin/functions/nightly", json={}, headers={"x-functions-key": "test-key"})
    assert response.status_code == 202
    assert sample_app.calls["timer"] == [False]


def test_ncrontab_schedules_have_seconds_first():
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert next_run("0 */5 * * * *", start) == datetime(2026, 1, 1, 0, 5, 0, tzinfo=UTC)
    assert next_run("30 0 3 * * *", start) == datetime(2026, 1, 1, 3, 0, 30, tzinfo=UTC)
    assert next_run("00:10:00", start) == datetime(2026, 1, 1, 0, 10, 0, tzinfo=UTC)
