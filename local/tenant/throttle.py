"""Throttling, latency and fault injection for the local tenant's Graph routes, switchable at run time.

Throttling follows the identity-and-access service limits of https://learn.microsoft.com/graph/throttling-limits
(token buckets): per app and tenant 3,500 / 5,000 / 8,000 resource units per 10 s for small / medium / large
tenants and 3,000 writes per 150 s; per tenant 18,000 writes per 5 minutes. A GET costs 1 resource unit
(a few documented endpoints cost more), a write costs 3 units and one write. Over a limit → 429 with Graph's
error envelope and Retry-After in whole seconds until the bucket has room again. Buckets refill on the tenant
clock, so advancing the clock through the control API refills them.

Faults (per path regex and optional method): a rate or the next N requests answer 429/500/503/504 with the
envelope (and Retry-After), or drop the connection; latency: fixed + uniform jitter in milliseconds. A seeded
RNG keeps runs repeatable.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .errors import graph_error
from .state import TenantState

GRAPH_PREFIXES = ("/v1.0/", "/beta/")
RU_PER_10S = {"small": 3500, "medium": 5000, "large": 8000}
EXPENSIVE_GETS = {"/authentication/methods": 2, "/transitiveMemberOf": 2, "/auditLogs/": 2, "/reports/": 2}


@dataclass
class Bucket:
    capacity: float
    window_s: float
    level: float = -1.0
    updated: datetime | None = None

    def take(self, now: datetime, amount: float) -> float:
        """Take `amount`; 0 when granted, else the seconds until it could be."""
        if self.level < 0:
            self.level = self.capacity
        if self.updated is not None:
            elapsed = max((now - self.updated).total_seconds(), 0)
            self.level = min(self.capacity, self.level + elapsed * self.capacity / self.window_s)
        self.updated = now
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) * self.window_s / self.capacity


@dataclass
class Fault:
    pattern: str
    method: str | None = None
    status: int = 503  # 429, 500, 503, 504, or 0 for a dropped connection
    rate: float = 0.0
    remaining: int | None = None  # "next N requests" mode
    retry_after: int = 1

    def matches(self, request: web.Request) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        return re.search(self.pattern, request.path) is not None


@dataclass
class Controls:
    limits: dict[str, float] = field(default_factory=dict)  # ruPer10s, writesPer150s, tenantWritesPer5min
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)  # {pattern, fixedMs, jitterMs}
    rng: random.Random = field(default_factory=lambda: random.Random(1234))
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # ring buffer, no bodies, no tokens
    enabled: bool = True


def controls(state: TenantState) -> Controls:
    if "throttle" not in state.extras:
        size = state.tenant.get("size", "small")
        state.extras["throttle"] = Controls(
            limits={"ruPer10s": RU_PER_10S.get(size, 3500), "writesPer150s": 3000, "tenantWritesPer5min": 18000}
        )
    return state.extras["throttle"]


def caller_app(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return "anonymous"
    try:  # bucketing only; the handler verifies the token
        return str(jwt.decode(header[7:], options={"verify_signature": False}).get("appid") or "unknown")
    except jwt.PyJWTError:
        return "invalid"


def cost(request: web.Request) -> tuple[float, bool]:
    write = request.method not in ("GET", "HEAD")
    if write:
        return 3.0, True
    for fragment, units in EXPENSIVE_GETS.items():
        if fragment in request.path:
            return float(units), False
    return 1.0, False


def _count(ctl: Controls, app: str, key: str) -> None:
    ctl.counters.setdefault(app, {}).setdefault(key, 0)
    ctl.counters[app][key] += 1


def _throttled(request: web.Request, seconds: float) -> web.Response:
    retry = max(1, math.ceil(seconds))
    return graph_error(
        429,
        "TooManyRequests",
        "Too many requests. Please retry after the time in the Retry-After header.",
        request,
        {"Retry-After": str(retry)},
    )


async def _latency(ctl: Controls, request: web.Request) -> None:
    for rule in ctl.latency:
        if re.search(rule.get("pattern", ""), request.path):
            delay = rule.get("fixedMs", 0) + ctl.rng.uniform(0, rule.get("jitterMs", 0))
            await asyncio.sleep(delay / 1000)


@web.middleware
async def graph_pipeline(request: web.Request, handler):
    if not request.path.startswith(GRAPH_PREFIXES):
        return await handler(request)
    if request.path.endswith("/$batch"):
        # Latency models the network: a batch pays it once; its items (loopback sub-requests) do not, but each
        # item is faulted and throttled on its own below, as Graph does.
        await _latency(controls(request.app[STATE]), request)
        return await handler(request)
    state: TenantState = request.app[STATE]
    ctl = controls(state)
    app = caller_app(request)
    _count(ctl, app, "requests")
    entry = {"method": request.method, "path": request.path, "appid": app, "at": state.now().isoformat()}
    ctl.requests.append(entry)
    del ctl.requests[:-500]
    if not request.headers.get("X-Local-Batch-Item"):
        await _latency(ctl, request)
    for fault in ctl.faults:
        if not fault.matches(request):
            continue
        fire = False
        if fault.remaining is not None and fault.remaining > 0:
            fault.remaining -= 1
            fire = True
        elif fault.rate and ctl.rng.random() < fault.rate:
            fire = True
        if fire:
            _count(ctl, app, f"fault{fault.status}")
            entry["status"] = fault.status
            if fault.status == 0:
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError
            if fault.status == 429:
                return _throttled(request, fault.retry_after)
            codes = {500: "InternalServerError", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
            return graph_error(
                fault.status,
                codes.get(fault.status, "UnknownError"),
                "Injected fault.",
                request,
                {"Retry-After": str(fault.retry_after)},
            )
    if ctl.enabled:
        units, write = cost(request)
        now = state.now()
        waits = [
            ctl.buckets.setdefault((app, "ru"), Bucket(ctl.limits["ruPer10s"], 10)).take(now, units),
        ]
        if write:
            waits.append(ctl.buckets.setdefault((app, "writes"), Bucket(ctl.limits["writesPer150s"], 150)).take(now, 1))
            waits.append(
                ctl.buckets.setdefault(("*", "writes"), Bucket(ctl.limits["tenantWritesPer5min"], 300)).take(now, 1)
            )
        if max(waits) > 0:
            _count(ctl, app, "throttled")
            entry["status"] = 429
            return _throttled(request, max(waits))
    response = await handler(request)
    entry["status"] = response.status
    return response


MIDDLEWARES = (graph_pipeline,)


# --- control routes -----------------------------------------------------------------------------------


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response([f.__dict__ for f in controls(request.app[STATE]).faults])


async def put_faults(request: web.Request) -> web.Response:
    """PUT /_control/faults [{pattern, method?, status, rate?, remaining?, retryAfter?}] (replaces); seed?"""
    body = await request.json()
    ctl = controls(request.app[STATE])
    rules = body.get("faults", body) if isinstance(body, dict) else body
    if isinstance(body, dict) and "seed" in body:
        ctl.rng.seed(body["seed"])
    ctl.faults = [
        Fault(
            pattern=r.get("pattern", "."),
            method=r.get("method"),
            status=int(r.get("status", 503)),
            rate=float(r.get("rate", 0)),
            remaining=r.get("remaining"),
            retry_after=int(r.get("retryAfter", 1)),
        )
        for r in rules
    ]
    return web.json_response([f.__dict__ for f in ctl.faults])


async def delete_faults(request: web.Request) -> web.Response:
    controls(request.app[STATE]).faults = []
    return web.Response(status=204)


async def put_latency(request: web.Request) -> web.Response:
    """PUT /_control/latency [{pattern, fixedMs, jitterMs}] (replaces)."""
    controls(request.app[STATE]).latency = list(await request.json())
    return web.json_response(controls(request.app[STATE]).latency)


async def delete_latency(request: web.Request) -> web.Response:
    controls(request.app[STATE]).latency = []
    return web.Response(status=204)


async def get_throttle(request: web.Request) -> web.Response:
    ctl = controls(request.app[STATE])
    buckets = {f"{app}:{kind}": {"capacity": b.capacity, "level": b.level} for (app, kind), b in ctl.buckets.items()}
    return web.json_response(
        {"enabled": ctl.enabled, "limits": ctl.limits, "counters": ctl.counters, "buckets": buckets}
    )


async def put_throttle(request: web.Request) -> web.Response:
    """PUT /_control/throttle {enabled?, limits?: {ruPer10s, writesPer150s, tenantWritesPer5min}} (resets buckets)."""
    body = await request.json()
    ctl = controls(request.app[STATE])
    ctl.enabled = bool(body.get("enabled", ctl.enabled))
    ctl.limits.update(body.get("limits", {}))
    ctl.buckets.clear()
    return await get_throttle(request)


async def reset_throttle(request: web.Request) -> web.Response:
    ctl = controls(request.app[STATE])
    ctl.buckets.clear()
    ctl.counters.clear()
    return web.Response(status=204)


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(controls(request.app[STATE]).requests)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/_control/faults", get_faults)
    r.add_put("/_control/faults", put_faults)
    r.add_delete("/_control/faults", delete_faults)
    r.add_put("/_control/latency", put_latency)
    r.add_delete("/_control/latency", delete_latency)
    r.add_get("/_control/throttle", get_throttle)
    r.add_put("/_control/throttle", put_throttle)
    r.add_post("/_control/reset-throttle", reset_throttle)
    r.add_get("/_control/requests", get_requests)
