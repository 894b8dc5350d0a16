"""local.settings.json and host.json reach the dev host the way func start reads them; the CLI starts and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from local.host import DevHost
from local.host.settings import HostConfig, LocalSettings, apply_values, restore_values
from tests.conftest import ROOT
from tests.host import sample_app
from tests.host.conftest import write_host_json, write_settings


def test_a_local_setting_does_not_override_a_non_empty_variable_but_fills_an_empty_one():
    environ = {"KEPT": "from-env", "EMPTY": ""}
    replaced = apply_values({"KEPT": "from-file", "EMPTY": "filled", "NEW": "new"}, environ)
    assert environ == {"KEPT": "from-env", "EMPTY": "filled", "NEW": "new"}
    restore_values(replaced, environ)
    assert environ == {"KEPT": "from-env", "EMPTY": ""}


def test_the_host_applies_values_for_its_lifetime_and_puts_the_environment_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SampleStorage", "already-set")
    settings = write_settings(tmp_path, {"SAMPLE_QUEUE": "q-from-file", "SampleStorage": "from-file"})
    host = DevHost(
        sample_app.app, settings_file=settings, host_json=write_host_json(tmp_path), port=0, run_queues=False
    )
    with host:
        assert os.environ["SAMPLE_QUEUE"] == "q-from-file"
        assert os.environ.get("SampleStorage") == "already-set"  # noqa: SIM112 (a binding connection name)
        assert host.pollers[0].queue_name == "q-from-file"  # %SAMPLE_QUEUE% resolved from the file
    assert "SAMPLE_QUEUE" not in os.environ
    assert os.environ.get("SampleStorage") == "already-set"  # noqa: SIM112 (a binding connection name)


def test_the_function_key_comes_from_devhost_function_key_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    host_json = write_host_json(tmp_path)
    from_file = write_settings(tmp_path, {"SAMPLE_QUEUE": "q", "DevHost:FunctionKey": "file-key"})
    with DevHost(sample_app.app, settings_file=from_file, host_json=host_json, port=0, run_queues=False) as host:
        assert (host.function_key, host.key_generated) == ("file-key", False)
        assert httpx.get(f"{host.url}/api/secret?code=file-key").status_code == 200
    monkeypatch.setenv("DEVHOST_FUNCTION_KEY", "env-key")
    with DevHost(sample_app.app, settings_file=from_file, host_json=host_json, port=0, run_queues=False) as host:
        assert host.function_key == "env-key"
        assert httpx.get(f"{host.url}/api/secret?code=file-key").status_code == 401


def test_an_encrypted_settings_file_is_refused(tmp_path: Path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": True, "Values": {"A": "x"}}))
    with pytest.raises(ValueError, match="encrypted"):
        LocalSettings.read(path)


def test_the_port_defaults_to_host_local_http_port(tmp_path: Path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"SAMPLE_QUEUE": "q"}, "Host": {"LocalHttpPort": 7345}}))
    host = DevHost(sample_app.app, settings_file=path, host_json=write_host_json(tmp_path), run_queues=False)
    assert host.port == 7345
    host.stop()
    assert "SAMPLE_QUEUE" not in os.environ


def test_host_json_keys_are_case_insensitive_and_function_timeout_minus_one_is_unbounded(tmp_path: Path):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"FunctionTimeout": "-1", "Extensions": {"Queues": {"MaxDequeueCount": 2}}}))
    config = HostConfig.load(path)
    assert config.function_timeout is None
    assert config.queues.max_dequeue_count == 2
    assert HostConfig.load(None).function_timeout == timedelta(minutes=30)


def test_the_products_host_json_has_the_worker_queue_settings():
    config = HostConfig.load(ROOT / "host.json")
    data = json.loads((ROOT / "host.json").read_text())
    assert data["version"] == "2.0"
    assert data["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert config.function_timeout == timedelta(minutes=10)
    assert config.route_prefix == "api"
    q = config.queues
    assert (q.max_dequeue_count, q.batch_size, q.batch_threshold, q.message_encoding) == (5, 16, 8, "base64")
    assert (q.visibility_timeout, q.max_polling_interval) == (timedelta(seconds=30), timedelta(seconds=2))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_m_local_host_serves_lists_functions_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    port = _free_port()
    settings = write_settings(tmp_path, {"SAMPLE_QUEUE": "q", "DevHost:FunctionKey": "cli-key"})
    command = [sys.executable, "-m", "local.host", "--app", "tests.host.sample_app", "--port", str(port)]
    command += ["--settings", str(settings), "--host-json", str(write_host_json(tmp_path)), "--no-queues"]
    env = {k: v for k, v in os.environ.items() if k not in ("SAMPLE_QUEUE", "DEVHOST_FUNCTION_KEY")}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "listening on" in line:
                break
        assert httpx.get(f"http://127.0.0.1:{port}/api/secret?code=cli-key").status_code == 200
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0
    assert f"secret: [GET,POST] http://127.0.0.1:{port}/api/secret" in output
    assert "dev host: stopping" in output
    assert "Traceback" not in output
