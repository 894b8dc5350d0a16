"""Fixtures for the dev host tests: sample_app served on a free port with its queue on the session's Azurite."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from local.host import DevHost
from tests.host import sample_app

KEY = "test-key"
# The product's host.json queue settings except a failed message reappears at once and polling stays short.
HOST_JSON = {
    "version": "2.0",
    "functionTimeout": "00:00:30",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {
            "maxPollingInterval": "00:00:00.100",
            "visibilityTimeout": "00:00:00",
            "batchSize": 16,
            "newBatchThreshold": 8,
            "maxDequeueCount": 5,
            "messageEncoding": "base64",
        },
    },
}


def write_host_json(directory: Path, **overrides: Any) -> Path:
    """host.json in `directory`; overrides are queue settings, except routePrefix and functionTimeout."""
    data = json.loads(json.dumps(HOST_JSON))
    if "routePrefix" in overrides:
        data["extensions"]["http"]["routePrefix"] = overrides.pop("routePrefix")
    if "functionTimeout" in overrides:
        data["functionTimeout"] = overrides.pop("functionTimeout")
    data["extensions"]["queues"].update(overrides)
    path = directory / "host.json"
    path.write_text(json.dumps(data))
    return path


def write_settings(directory: Path, values: dict[str, str]) -> Path:
    path = directory / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no recorded calls and no key or queue name inherited from the environment."""
    for name in ("SAMPLE_QUEUE", "SampleStorage", "AzureWebJobsSampleStorage", "DEVHOST_FUNCTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    sample_app.calls["queue"].clear()
    sample_app.calls["timer"].clear()
    sample_app.fail_queue_bodies.clear()


@pytest.fixture
def queue_name() -> str:
    return f"sample-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def host(azurite, tmp_path: Path, queue_name: str) -> Iterator[DevHost]:
    """sample_app on a free port; its key and queue come from local.settings.json, as with func start."""
    values = {"SAMPLE_QUEUE": queue_name, "SampleStorage": azurite.connection_string, "DevHost:FunctionKey": KEY}
    settings = write_settings(tmp_path, values)
    with DevHost(sample_app.app, settings_file=settings, host_json=write_host_json(tmp_path), port=0) as running:
        yield running


def queue(azurite, name: str, create: bool = True) -> QueueClient:
    client = QueueClient.from_connection_string(azurite.connection_string, name)
    if create:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
    return client


def send(azurite, name: str, body: bytes, *, encode: bool = True) -> None:
    """Put a message on the queue as a producer using the host's base64 convention would."""
    text = base64.b64encode(body).decode() if encode else body.decode()
    queue(azurite, name).send_message(text)


def wait_for(predicate: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def peek(azurite, name: str) -> list:
    try:
        return list(QueueClient.from_connection_string(azurite.connection_string, name).peek_messages(max_messages=32))
    except Exception:  # the poison queue does not exist until the first poison message
        return []


def http_only_host(tmp_path: Path, **host_json: Any) -> DevHost:
    """sample_app without queue polling (its queue binding still needs the setting, as in the host)."""
    return DevHost(
        sample_app.app,
        settings_file=None,
        settings={"SAMPLE_QUEUE": "not-polled"},
        host_json=write_host_json(tmp_path, **host_json),
        port=0,
        run_queues=False,
    )
