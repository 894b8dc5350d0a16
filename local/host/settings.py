"""What the dev host reads: local.settings.json Values and host.json (routePrefix, queue settings).

Queue settings follow https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#hostjson-settings
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def timespan(value: str | None, default: timedelta) -> timedelta:
    """A .NET TimeSpan string ("00:00:30", "1.02:00:00") as a timedelta."""
    if not value:
        return default
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ValueError(f"not a TimeSpan: {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0")[:6].ljust(6, "0")),
    )


@dataclass
class QueueSettings:
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass
class HostConfig:
    route_prefix: str = "api"
    queues: QueueSettings = None  # type: ignore[assignment]

    @classmethod
    def load(cls, path: Path | None) -> HostConfig:
        data = json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {}
        extensions = data.get("extensions", {})
        q = extensions.get("queues", {})
        queues = QueueSettings(
            max_polling_interval=timespan(q.get("maxPollingInterval"), timedelta(minutes=1)),
            visibility_timeout=timespan(q.get("visibilityTimeout"), timedelta(0)),
            batch_size=int(q.get("batchSize", 16)),
            new_batch_threshold=q.get("newBatchThreshold"),
            max_dequeue_count=int(q.get("maxDequeueCount", 5)),
            message_encoding=str(q.get("messageEncoding", "base64")).lower(),
        )
        prefix = extensions.get("http", {}).get("routePrefix", "api")
        return cls(route_prefix=prefix.strip("/"), queues=queues)


def load_settings(path: Path | None, *, override: bool = False) -> dict[str, str]:
    """Put local.settings.json Values into os.environ; variables already set win unless `override`."""
    if path is None or not path.exists():
        return {}
    values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    applied = {}
    for name, value in values.items():
        if override or name not in os.environ:
            os.environ[name] = str(value)
        applied[name] = os.environ[name]
    return applied


def resolve(value: str) -> str:
    """Binding expressions like %WORK_QUEUE_NAME% resolve from app settings, as the host does."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"app setting {name} is not set (used as %{name}% in a binding)")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", lookup, value)
