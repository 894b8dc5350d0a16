"""What the dev host reads: local.settings.json (Values → environment, as `func start` does) and host.json.

- local.settings.json: https://learn.microsoft.com/azure/azure-functions/functions-develop-local#local-settings-file
  Core Tools sets each Value as an environment variable unless the variable already holds a non-empty value
  (then it prints "Skipping '<name>' from local settings as it's already defined in current environment
  variables."); we do the same. Host.LocalHttpPort is the default port when --port is not given.
- host.json queues: https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json
- host.json http.routePrefix and functionTimeout: https://learn.microsoft.com/azure/azure-functions/functions-host-json
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("local.host")

_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)  # documented minimum of maxPollingInterval
# "During local development, the maximum polling interval defaults to two seconds" (queue trigger doc).
LOCAL_MAX_POLLING_INTERVAL = timedelta(seconds=2)
# functionTimeout defaults to 30 min outside the Consumption plan (functions-scale#timeout); Core Tools is not
# a dynamic SKU, so it gets the 30 min default as well.
DEFAULT_FUNCTION_TIMEOUT = timedelta(minutes=30)


def timespan(value: str | None, default: timedelta) -> timedelta:
    """A .NET TimeSpan string ("00:00:30", "1.02:00:00", "00:00:00.250") as a timedelta."""
    if value is None or value == "":
        return default
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise ValueError(f"not a TimeSpan: {value!r} (expected [d.]hh:mm:ss[.fff])")
    negative, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0")[:6].ljust(6, "0")),
    )
    return -span if negative else span


def format_timespan(span: timedelta) -> str:
    """hh:mm:ss as the host prints it in its timeout messages."""
    total = int(span.total_seconds())
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _lower_keys(value: Any) -> Any:
    # .NET configuration keys are case-insensitive: "MaxDequeueCount" and "maxDequeueCount" are the same key.
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class QueueSettings:
    """extensions.queues of host.json, with the documented defaults and limits."""

    max_polling_interval: timedelta = LOCAL_MAX_POLLING_INTERVAL
    visibility_timeout: timedelta = timedelta(0)
    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: N*batchSize/2, N = vCPUs
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 32:
            raise ValueError(f"host.json queues.batchSize must be 1-32, not {self.batch_size}")
        if self.max_polling_interval < MIN_POLLING_INTERVAL:
            raise ValueError("host.json queues.maxPollingInterval must not be less than 00:00:00.100")
        if self.max_dequeue_count < 1:
            raise ValueError("host.json queues.maxDequeueCount must be greater than zero")
        if self.visibility_timeout < timedelta(0):
            raise ValueError("host.json queues.visibilityTimeout must not be negative")
        if self.message_encoding not in ("base64", "none"):
            raise ValueError(f"host.json queues.messageEncoding must be base64 or none, not {self.message_encoding!r}")

    @property
    def batch_threshold(self) -> int:
        """When this few messages are still running, the next batch is fetched (newBatchThreshold)."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return (os.cpu_count() or 1) * self.batch_size // 2

    @classmethod
    def from_json(cls, queues: Mapping[str, Any]) -> QueueSettings:
        q = _lower_keys(dict(queues))
        threshold = q.get("newbatchthreshold")
        return cls(
            max_polling_interval=timespan(q.get("maxpollinginterval"), LOCAL_MAX_POLLING_INTERVAL),
            visibility_timeout=timespan(q.get("visibilitytimeout"), timedelta(0)),
            batch_size=int(q.get("batchsize", 16)),
            new_batch_threshold=None if threshold is None else int(threshold),
            max_dequeue_count=int(q.get("maxdequeuecount", 5)),
            message_encoding=str(q.get("messageencoding", "base64")).lower(),
        )


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the dev host honours."""

    route_prefix: str = "api"
    queues: QueueSettings = field(default_factory=QueueSettings)
    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT  # None: unbounded ("-1")

    @classmethod
    def load(cls, path: Path | None) -> HostConfig:
        data = json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {}
        data = _lower_keys(data)
        extensions = data.get("extensions", {})
        prefix = extensions.get("http", {}).get("routeprefix", "api")
        raw_timeout = data.get("functiontimeout")
        timeout = None if str(raw_timeout).strip() == "-1" else timespan(raw_timeout, DEFAULT_FUNCTION_TIMEOUT)
        return cls(
            route_prefix=str(prefix).strip("/"),
            queues=QueueSettings.from_json(extensions.get("queues", {})),
            function_timeout=timeout,
        )


@dataclass(frozen=True)
class LocalSettings:
    """local.settings.json: Values (app settings) and Host (LocalHttpPort)."""

    values: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path | None) -> LocalSettings:
        if path is None or not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        if data.get("IsEncrypted"):
            raise ValueError(f"{path} is encrypted (IsEncrypted: true); run with plain-text Values")
        values = {str(k): "" if v is None else _setting_text(v) for k, v in (data.get("Values") or {}).items()}
        return cls(values=values, host=dict(data.get("Host") or {}))

    @property
    def local_http_port(self) -> int | None:
        port = self.host.get("LocalHttpPort")
        return int(port) if port not in (None, "") else None


def _setting_text(value: Any) -> str:
    # App settings are strings; a JSON true/false/number in Values reaches the app as its JSON text.
    return value if isinstance(value, str) else json.dumps(value)


def apply_values(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> dict[str, str | None]:
    """Set Values in the environment the way Core Tools does; returns what it replaced, for restore_values().

    A variable that already holds a non-empty value wins (Core Tools: "Skipping '<name>' from local settings as
    it's already defined in current environment variables."); an unset or empty one takes the setting.
    """
    env = os.environ if environ is None else environ
    replaced: dict[str, str | None] = {}
    for name, value in values.items():
        if not name:
            log.warning("Skipping local setting with empty key.")
        elif env.get(name):
            log.warning(
                "Skipping '%s' from local settings as it's already defined in current environment variables.", name
            )
        else:
            replaced[name] = env.get(name)
            env[name] = value
    return replaced


def restore_values(replaced: Mapping[str, str | None], environ: MutableMapping[str, str] | None = None) -> None:
    """Undo apply_values(), so an in-process host leaves the test process's environment as it found it."""
    env = os.environ if environ is None else environ
    for name, previous in replaced.items():
        if previous is None:
            env.pop(name, None)
        else:
            env[name] = previous


def resolve(value: str) -> str:
    """Binding expressions like %WORK_QUEUE_NAME% resolve from app settings, as the host does."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"app setting {name} is not set (used as %{name}% in a binding)")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", lookup, value)
