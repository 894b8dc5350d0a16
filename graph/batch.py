"""JSON batching (POST /$batch, at most 20 requests) with per-item retry of throttled items.

https://learn.microsoft.com/graph/json-batching : items are throttled on their own (429 + Retry-After inside a
200 batch) and the SDKs do not retry them, so we do: only the throttled or transiently failed items are sent
again, after the longest Retry-After among them. Built on our raw caller, not the SDK's BatchRequestContent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphCallError
from .raw import GraphCaller

MAX_BATCH = 20
RETRYABLE = {429, 503, 504}


@dataclass
class BatchItem:
    id: str
    method: str
    url: str  # relative to the version root, e.g. /users/{id}
    body: Any = None
    depends_on: list[str] = field(default_factory=list)

    def request(self, present: set[str] | None = None) -> dict[str, Any]:
        """The batch entry; dependencies not in this batch (`present`) already succeeded and are dropped."""
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        if self.body is not None:
            item["body"] = self.body
            item["headers"] = {"Content-Type": "application/json"}
        depends_on = [d for d in self.depends_on if present is None or d in present]
        if depends_on:
            item["dependsOn"] = depends_on
        return item


@dataclass
class BatchResult:
    id: str
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _retry_after(result: BatchResult, default: float) -> float:
    value = {k.lower(): v for k, v in (result.headers or {}).items()}.get("retry-after")
    try:
        return min(float(value), 60.0) if value is not None else default
    except ValueError:
        return default


async def run_batch(
    caller: GraphCaller, items: list[BatchItem], *, attempts: int = 5, base_delay: float = 0.5, sleep=asyncio.sleep
) -> dict[str, BatchResult]:
    """Send `items` (≤ 20) and retry throttled ones; results by item id (the last answer for each)."""
    if len(items) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} requests, got {len(items)}")
    results: dict[str, BatchResult] = {}
    pending = list(items)
    for attempt in range(attempts):
        present = {item.id for item in pending}
        answer = await caller.json("POST", "/$batch", body={"requests": [item.request(present) for item in pending]})
        retry: list[BatchItem] = []
        delay = 0.0
        by_id = {item.id: item for item in pending}
        for response in (answer or {}).get("responses", []):
            result = BatchResult(
                id=str(response["id"]),
                status=int(response["status"]),
                body=response.get("body"),
                headers=response.get("headers") or {},
            )
            results[result.id] = result
            if result.status in RETRYABLE and result.id in by_id:
                retry.append(by_id[result.id])
                delay = max(delay, _retry_after(result, base_delay * 2**attempt))
        # An item that depended on a throttled one failed with 424, and so did everything after it in a chain:
        # they go again with their dependency (transitively, so a sequential batch resumes where it stopped).
        retried = {item.id for item in retry}
        grew = True
        while grew:
            grew = False
            for item in pending:
                result = results.get(item.id)
                if item.id in retried or result is None or result.status != 424:
                    continue
                if set(item.depends_on) & retried:
                    retry.append(item)
                    retried.add(item.id)
                    grew = True
        retry.sort(key=lambda item: pending.index(item))  # keep the original order for dependsOn
        if not retry or attempt == attempts - 1:
            break
        await sleep(delay)
        pending = retry
    return results


def chunks(items: list[BatchItem], size: int = MAX_BATCH) -> list[list[BatchItem]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def batch_error(result: BatchResult, method: str, path: str) -> GraphCallError:
    """A failed batch item as the error a direct call would have raised."""
    error = (result.body or {}).get("error", {}) if isinstance(result.body, dict) else {}
    return GraphCallError(result.status, error.get("code", "unknown"), error.get("message", ""), method, path)
