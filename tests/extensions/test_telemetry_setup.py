"""Process set-up: the per-request wire loggers are quieted, so the worker does not forward a line per call."""

from __future__ import annotations

import logging

import pytest

from extensions import telemetry


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch):
    """configure() as on a new worker: not yet run, wire loggers at their defaults (restored afterwards)."""
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    saved = {name: logging.getLogger(name).level for name in telemetry.WIRE_LOGGERS}
    for name in telemetry.WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_configure_quiets_the_sdk_loggers_that_write_a_line_per_request(fresh_process):
    """azure-core's HTTP logging policy, azure-identity and httpx log INFO per request; after configure() they
    only pass warnings."""
    telemetry.configure()
    for name in ("azure.core.pipeline.policies.http_logging_policy", "httpx"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
