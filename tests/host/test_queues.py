"""The dev host runs queue triggers from Azurite with the Functions host's message, retry and poison semantics."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError

from local.host import DevHost
from local.host.queues import DEV_ACCOUNT, Backoff, connection_string
from local.host.settings import QueueSettings
from tests.host import sample_app
from tests.host.conftest import KEY, peek, queue, send, wait_for, write_host_json


def _empty(azurite, name: str) -> bool:
    return queue(azurite, name, create=False).get_queue_properties().approximate_message_count == 0


def test_a_base64_message_is_decoded_processed_once_and_deleted(host: DevHost, azurite, queue_name: str):
    send(azurite, queue_name, b'{"n": 1}')
    wait_for(lambda: sample_app.calls["queue"])
    wait_for(lambda: _empty(azurite, queue_name))
    [(body, dequeue_count, message_id, pop_receipt, inserted, _)] = sample_app.calls["queue"]
    assert (body, dequeue_count) == (b'{"n": 1}', 1)
    assert message_id
    assert pop_receipt
    assert inserted is not None
    assert host.pollers[0].processed == 1


def test_a_failing_message_is_tried_five_times_then_moved_to_poison_with_its_original_text(
    host: DevHost, azurite, queue_name: str
):
    sample_app.fail_queue_bodies.add(b"bad")
    send(azurite, queue_name, b"bad")
    moved = wait_for(lambda: peek(azurite, f"{queue_name}-poison"))
    assert [m.content for m in moved] == [base64.b64encode(b"bad").decode()]
    assert [count for body, count, *_ in sample_app.calls["queue"] if body == b"bad"] == [1, 2, 3, 4, 5]
    wait_for(lambda: _empty(azurite, queue_name))


def test_a_message_that_fails_once_is_retried_and_then_deleted(host: DevHost, azurite, queue_name: str):
    sample_app.fail_queue_bodies.add(b"flaky")
    send(azurite, queue_name, b"flaky")
    wait_for(lambda: len(sample_app.calls["queue"]) >= 2)
    sample_app.fail_queue_bodies.clear()
    wait_for(lambda: _empty(azurite, queue_name))
    assert peek(azurite, f"{queue_name}-poison") == []
    assert host.pollers[0].failed >= 1


def test_a_failed_message_comes_back_only_after_visibility_timeout(azurite, tmp_path: Path, queue_name: str):
    sample_app.fail_queue_bodies.add(b"later")
    settings = {"SAMPLE_QUEUE": queue_name, "SampleStorage": azurite.connection_string}
    host_json = write_host_json(tmp_path, visibilityTimeout="00:00:01")
    with DevHost(sample_app.app, settings_file=None, settings=settings, host_json=host_json, port=0):
        send(azurite, queue_name, b"later")
        wait_for(lambda: len(sample_app.calls["queue"]) >= 2)
    first, second = sample_app.calls["queue"][:2]
    assert (first[1], second[1]) == (1, 2)
    assert second[-1] - first[-1] >= 0.9  # Azurite keeps it hidden for the second set after the failure


def test_a_message_that_is_not_base64_goes_straight_to_poison_without_running_the_function(
    host: DevHost, azurite, queue_name: str
):
    send(azurite, queue_name, b"not base64 !", encode=False)
    moved = wait_for(lambda: peek(azurite, f"{queue_name}-poison"))
    assert [m.content for m in moved] == ["not base64 !"]
    assert sample_app.calls["queue"] == []


def test_message_encoding_none_passes_the_text_as_it_is(azurite, tmp_path: Path, queue_name: str):
    settings = {"SAMPLE_QUEUE": queue_name, "SampleStorage": azurite.connection_string}
    host_json = write_host_json(tmp_path, messageEncoding="none")
    with DevHost(sample_app.app, settings_file=None, settings=settings, host_json=host_json, port=0):
        send(azurite, queue_name, b"plain text", encode=False)
        wait_for(lambda: sample_app.calls["queue"])
    assert sample_app.calls["queue"][0][0] == b"plain text"


def test_a_message_already_dequeued_more_than_max_times_is_poisoned_unprocessed(
    azurite, tmp_path: Path, queue_name: str
):
    client = queue(azurite, queue_name)
    client.send_message(base64.b64encode(b"crashed").decode())
    for _ in range(5):  # five tries that never settled (a host crashing mid-run)
        taken = client.receive_message(visibility_timeout=30)
        client.update_message(taken.id, taken.pop_receipt, visibility_timeout=0)
    settings = {"SAMPLE_QUEUE": queue_name, "SampleStorage": azurite.connection_string}
    with DevHost(sample_app.app, settings_file=None, settings=settings, host_json=write_host_json(tmp_path), port=0):
        moved = wait_for(lambda: peek(azurite, f"{queue_name}-poison"))
    assert [base64.b64decode(m.content) for m in moved] == [b"crashed"]
    assert sample_app.calls["queue"] == []


def test_the_listener_waits_for_a_missing_queue_instead_of_creating_it(host: DevHost, azurite, queue_name: str):
    with pytest.raises(ResourceNotFoundError):
        queue(azurite, queue_name, create=False).get_queue_properties()
    send(azurite, queue_name, b"after creation")  # the producer creates it
    wait_for(lambda: sample_app.calls["queue"])


def test_a_queue_function_runs_on_demand_through_the_admin_api(host: DevHost):
    url = f"{host.url}/admin/functions/on_message"
    assert httpx.post(url, json={"input": "hi"}).status_code == 401
    assert httpx.post(url, json={"input": "hi"}, headers={"x-functions-key": KEY}).status_code == 202
    assert [(body, count) for body, count, *_ in sample_app.calls["queue"]] == [(b"hi", 1)]
    sample_app.fail_queue_bodies.add(b"no")
    failed = httpx.post(url, json={"input": "no"}, headers={"x-functions-key": KEY})
    assert failed.status_code == 500
    assert "asked to fail" in failed.json()["error"]


def test_use_development_storage_means_azurites_default_endpoints(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    conn = connection_string("")
    assert f"AccountName={DEV_ACCOUNT};" in conn
    assert f"QueueEndpoint=http://127.0.0.1:10001/{DEV_ACCOUNT}" in conn
    assert f"BlobEndpoint=http://127.0.0.1:10000/{DEV_ACCOUNT}" in conn
    assert f"TableEndpoint=http://127.0.0.1:10002/{DEV_ACCOUNT}" in conn
    assert connection_string("AzureWebJobsStorage") == conn


def test_an_explicit_connection_string_is_used_and_the_azurewebjobs_prefix_wins(monkeypatch: pytest.MonkeyPatch):
    explicit = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:1/a;"
    monkeypatch.setenv("MyStorage", explicit)
    assert connection_string("MyStorage") == explicit
    monkeypatch.setenv("AzureWebJobsMyStorage", "UseDevelopmentStorage=true")
    assert "devstoreaccount1" in connection_string("MyStorage")


def test_a_missing_or_identity_based_connection_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("Nowhere", raising=False)
    with pytest.raises(RuntimeError, match="Nowhere is not set"):
        connection_string("Nowhere")
    monkeypatch.setenv("Ident__queueServiceUri", "https://acct.queue.core.windows.net")
    with pytest.raises(RuntimeError, match="identity-based"):
        connection_string("Ident")


def test_polling_backs_off_from_about_200_ms_to_max_polling_interval_and_resets_after_a_message():
    backoff = Backoff(timedelta(seconds=2))
    first = backoff.next(found=False)
    assert 0.18 <= first <= 0.22
    delays = [backoff.next(found=False) for _ in range(10)]
    assert delays == sorted(delays)
    assert delays[-1] == 2.0
    assert backoff.next(found=True) == 0.1


def test_host_json_queue_settings_have_the_documented_defaults_and_limits():
    defaults = QueueSettings.from_json({})
    assert defaults.max_polling_interval == timedelta(seconds=2)  # local development default
    assert defaults.visibility_timeout == timedelta(0)
    assert (defaults.batch_size, defaults.max_dequeue_count, defaults.message_encoding) == (16, 5, "base64")
    assert QueueSettings.from_json({"BatchSize": 4, "newBatchThreshold": 2}).batch_threshold == 2
    for bad in ({"batchSize": 33}, {"maxPollingInterval": "00:00:00.050"}, {"messageEncoding": "utf8"}):
        with pytest.raises(ValueError, match=r"host\.json"):
            QueueSettings.from_json(bad)
