"""OpenTelemetry: exported to Application Insights when a connection string is set, otherwise a no-op.

Spans carry request ids, stages and Graph paths; never a token, a pass, or a request body.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

log = logging.getLogger(__name__)
tracer = trace.get_tracer("mfa_reset_extension")
_configured = False


# Loggers that write one INFO line per HTTP request: azure-core's logging policy (every storage call with its
# headers) and httpx (every URL). In Azure the worker forwards INFO to Application Insights, so left alone they
# would bill a trace per storage and Graph call and spend CPU on the callout's 2-second path.
WIRE_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "httpx")


def configure() -> None:
    """Once per process: quiet the per-request wire loggers, and turn on the Azure Monitor exporter when
    APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    global _configured
    if _configured:
        return
    _configured = True
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return
    from azure.monitor.opentelemetry import configure_azure_monitor  # heavy: imported only when used

    configure_azure_monitor(logger_name="extensions")
    log.info("telemetry exported to Application Insights")


@contextmanager
def span(name: str, **attributes: Any):
    with tracer.start_as_current_span(name) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key, value if isinstance(value, (str, int, float, bool)) else str(value))
        yield current
