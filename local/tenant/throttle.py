"""Throttling, latency and fault injection for the local tenant, and its request log: the aiohttp middleware.

Throttling follows "Identity and access service limits" in https://learn.microsoft.com/graph/throttling-limits :
token buckets per application + tenant of 3,500 / 5,000 / 8,000 resource units per 10 s (tenant size S < 50
users, M 50-500, L > 500; the fixture's tenant["size"]) and 3,000 writes per 2 min 30 s; per tenant 18,000
writes per 5 min. Request costs come from the page's "base request costs" table (GET users 2, GET groups/{id}/
members 3, GET groups/{id}/transitiveMembers 5, GET users/{id}/memberOf or transitiveMemberOf 2, ...; any other
GET 1 RU; any other POST/PATCH/PUT/DELETE 1 RU + 1 write), adjusted by $select -1, $expand +1, $top < 20 -1, never
below 1. "Identity and access reports service limits" on the same page: 5 requests per 10 s per app and tenant
for /reports and /auditLogs. The page is silent on authentication methods, Entitlement Management and Teams apps:
they are charged like any other identity path. The per-application limits across all tenants (150,000 RU per 20 s,
35,000 writes per 5 min) can never bind before the app+tenant ones in a one-tenant emulator, so they are left out.

Over a limit → 429 with Graph's error envelope, Retry-After in whole seconds until the bucket has room again, and
the documented x-ms-throttle-scope / x-ms-throttle-information headers; successful identity responses carry
x-ms-resource-unit (and x-ms-throttle-limit-percentage past 80 % of a bucket). Buckets refill on the tenant clock
(state.now()), so advancing the clock through the control API refills them. Only Graph paths (/v1.0, /beta) are
throttled; requests without a readable bearer token are left to the handler's 401.

Latency (fixed + seeded uniform jitter, ms; optionally on $batch items too) and faults (429/500/503/504 with the
envelope and Retry-After, or a dropped connection; a rate and/or "the next N requests") apply to any path but
/_control, per rule (regex `pattern` or `prefix`, optional `method`). A $batch pays latency once; its items
(loopback sub-requests marked with BATCH_ITEM_HEADER) are faulted and throttled one by one, as Graph evaluates them.
The control routes are in control.py.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .errors import GraphError, graph_error
from .state import TenantState

GRAPH_PREFIXES = ("/v1.0/", "/beta/")
CONTROL_PREFIX = "/_control"
BATCH_ITEM_HEADER = "X-Local-Batch-Item"  # set by graph_batch on its sub-requests (value: the item id)
LOG_SIZE = 2000
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
RU_PER_10S = {"small": 3500, "medium": 5000, "large": 8000}
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
REPORT_PATHS = re.compile(r"^/(reports|auditLogs)(/|$)")

# The page's "base request costs" table: (method, path relative to the version root, RU, write cost).
# "Any request cost that applies to a request path starting with me/ also applies to ... users/{id}/".
_ID = r"[^/]+"
_USER = rf"/(me|users/{_ID})"
COST_TABLE: list[tuple[str, re.Pattern[str], int, int]] = [
    (m, re.compile(p), ru, w)
    for m, p, ru, w in [
        ("GET", r"^/applications$", 2, 0),
        ("GET", rf"^/applications/{_ID}/extensionProperties$", 2, 0),
        ("GET", r"^/contracts$", 3, 0),
        ("POST", r"^/directoryObjects/getByIds$", 5, 0),
        ("GET", rf"^/domains/{_ID}/domainNameReferences$", 4, 0),
        ("POST", r"^/getObjectsById$", 5, 0),
        ("GET", rf"^/groups/{_ID}/members(/microsoft\.graph\.\w+)?$", 3, 0),
        ("GET", rf"^/groups/{_ID}/transitiveMembers(/microsoft\.graph\.\w+)?$", 5, 0),
        ("POST", rf"^/({_ID}/)*isMemberOf$", 4, 0),
        ("POST", rf"^{_USER}/checkMember(Groups|Objects)$", 4, 0),
        ("POST", rf"^{_USER}/getMember(Groups|Objects)$", 2, 0),
        ("GET", rf"^{_USER}/(licenseDetails|memberOf|ownedObjects|transitiveMemberOf)(/microsoft\.graph\.\w+)?$", 2, 0),
        ("GET", rf"^/oauth2PermissionGrants(/{_ID})?$", 2, 0),
        ("GET", rf"^/servicePrincipals/{_ID}/appRoleAssignments$", 2, 0),
        ("GET", r"^/subscribedSkus$", 3, 0),
        ("GET", r"^/users$", 2, 0),
    ]
]


@dataclass
class Rule:
    """One documented limit: `limit` units of `measure` per `window_s` seconds, per `scope`."""

    name: str
    scope: str  # "Tenant_Application" (per app and tenant) or "Tenant" (all apps)
    measure: str  # "ru", "writes" or "requests"
    limit: float
    window_s: float
    paths: str = ""  # regex on the path relative to the version root; empty = every identity path but reports
    information: str = "ResourceUnitLimitExceeded"


def default_rules(size: str) -> list[Rule]:
    return [
        Rule("resourceUnits", "Tenant_Application", "ru", RU_PER_10S.get(size, RU_PER_10S["small"]), 10),
        Rule("writes", "Tenant_Application", "writes", 3000, 150, information="WriteLimitExceeded"),
        Rule("tenantWrites", "Tenant", "writes", 18000, 300, information="WriteLimitExceeded"),
        Rule("reports", "Tenant_Application", "requests", 5, 10, paths=REPORT_PATHS.pattern),
    ]


@dataclass
class Bucket:
    """A token bucket that refills continuously at capacity / window on the tenant clock."""

    capacity: float
    window_s: float
    level: float
    updated: datetime

    def level_at(self, now: datetime) -> float:
        elapsed = max((now - self.updated).total_seconds(), 0.0)
        return min(self.capacity, self.level + elapsed * self.capacity / self.window_s)

    def wait(self, now: datetime, amount: float) -> float:
        """Seconds until `amount` fits (0 when it fits now); a request bigger than the bucket waits a full window."""
        missing = min(amount, self.capacity) - self.level_at(now)
        return 0.0 if missing <= 1e-9 else missing * self.window_s / self.capacity

    def take(self, now: datetime, amount: float) -> None:
        self.level = max(self.level_at(now) - amount, 0.0)
        self.updated = now


@dataclass
class Fault:
    """Answer matching requests with `status` (429, 500, 503, 504; 0 = drop the connection)."""

    pattern: str = ""
    prefix: str = ""
    method: str | None = None
    status: int = 503
    rate: float = 0.0
    remaining: int | None = None  # "the next N matching requests fail"
    retryAfter: int = 1  # the control API's JSON names
    fired: int = 0


@dataclass
class Latency:
    pattern: str = ""
    prefix: str = ""
    method: str | None = None
    fixedMs: float = 0.0
    jitterMs: float = 0.0
    batchItems: bool = False  # also delay $batch items (a slow service behind Graph, not the client's network)


@dataclass
class Controls:
    """Everything switchable at run time; kept in state.extras["throttle"]."""

    rules: list[Rule]
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)  # (rule name, app id or "*")
    faults: list[Fault] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(1234))
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # app id → {requests, throttled, 429, ...}
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    enabled: bool = True
    batch_sequencing: str = "any"  # "strict": Graph's "fully sequential or fully parallel" (see graph_batch)


def controls(state: TenantState) -> Controls:
    if "throttle" not in state.extras:
        state.extras["throttle"] = Controls(rules=default_rules(state.tenant.get("size", "small")))
    return state.extras["throttle"]


def _matches(rule: Fault | Latency, request: web.Request) -> bool:
    if rule.method and rule.method.upper() != request.method:
        return False
    if rule.prefix and not request.path.startswith(rule.prefix):
        return False
    return not rule.pattern or re.search(rule.pattern, request.path) is not None


# --- rule parsing for the control API --------------------------------------------------------------------------


def parse_fault(raw: dict[str, Any]) -> Fault:
    status = raw.get("status", 503)
    status = 0 if status in ("drop", "dropConnection", None) else int(status)
    if status not in (0, 429, 500, 503, 504):
        raise ValueError(f"status must be 429, 500, 503, 504 or 'drop', not {raw.get('status')!r}")
    remaining = raw.get("remaining", raw.get("next"))
    rate = float(raw.get("rate", 0.0 if remaining is not None else 1.0))
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    return Fault(
        pattern=str(raw.get("pattern", "")),
        prefix=str(raw.get("prefix", "")),
        method=raw.get("method"),
        status=status,
        rate=rate,
        remaining=None if remaining is None else int(remaining),
        retryAfter=int(raw.get("retryAfter", 1)),
    )


def parse_latency(raw: dict[str, Any]) -> Latency:
    return Latency(
        pattern=str(raw.get("pattern", "")),
        prefix=str(raw.get("prefix", "")),
        method=raw.get("method"),
        fixedMs=float(raw.get("fixedMs", 0)),
        jitterMs=float(raw.get("jitterMs", 0)),
        batchItems=bool(raw.get("batchItems", False)),
    )


def describe(ctl: Controls, state: TenantState) -> dict[str, Any]:
    """The rule table, every bucket as of now, and the per-app counters."""
    now = state.now()
    return {
        "enabled": ctl.enabled,
        "tenantSize": state.tenant.get("size", "small"),
        "rules": [
            {
                "name": r.name,
                "scope": r.scope,
                "measure": r.measure,
                "limit": r.limit,
                "windowSeconds": r.window_s,
                "paths": r.paths,
            }
            for r in ctl.rules
        ],
        "buckets": [
            {"rule": name, "app": app, "capacity": b.capacity, "level": round(b.level_at(now), 3)}
            for (name, app), b in ctl.buckets.items()
        ],
        "counters": ctl.counters,
    }


def faults_json(ctl: Controls) -> list[dict[str, Any]]:
    return [asdict(f) | {"status": f.status or "drop"} for f in ctl.faults]


def latency_json(ctl: Controls) -> list[dict[str, Any]]:
    return [asdict(rule) for rule in ctl.latency]


# --- cost and buckets ------------------------------------------------------------------------------------------


def caller_app(request: web.Request) -> str | None:
    """The token's appid (azp for v2 tokens), read without verifying: for bucketing only; handlers verify."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    try:
        claims = jwt.decode(header[7:], options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    app = claims.get("appid") or claims.get("azp")
    return str(app) if app else None


def relative_path(path: str) -> str:
    for prefix in GRAPH_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) - 1 :]
    return path


def cost(method: str, path: str, query: dict[str, str]) -> tuple[int, int]:
    """(resource units, writes) of one identity request, per the page's table and its query-option rules."""
    rel = relative_path(path).rstrip("/") or "/"
    units, writes = 1, 1 if method in WRITE_METHODS else 0
    for row_method, pattern, row_units, row_writes in COST_TABLE:
        if row_method == method and pattern.match(rel):
            units, writes = row_units, row_writes
            break
    if "$select" in query:
        units = 2 if rel.endswith(("getByIds", "getObjectsById")) else units - 1
    if "$expand" in query:
        units += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        units -= 1
    return max(units, 1), writes


def _amounts(rule: Rule, units: int, writes: int) -> float:
    return {"ru": units, "writes": writes, "requests": 1}[rule.measure]


def _applies(rule: Rule, rel: str) -> bool:
    if rule.paths:
        return re.search(rule.paths, rel) is not None
    return REPORT_PATHS.search(rel) is None  # reports and audit logs have their own limit, not the identity ones


def _bucket(ctl: Controls, rule: Rule, app: str, now: datetime) -> Bucket:
    key = (rule.name, app if rule.scope == "Tenant_Application" else "*")
    bucket = ctl.buckets.get(key)
    if bucket is None or bucket.capacity != rule.limit or bucket.window_s != rule.window_s:
        bucket = ctl.buckets[key] = Bucket(rule.limit, rule.window_s, rule.limit, now)
    return bucket


def _count(ctl: Controls, app: str, key: str) -> None:
    per_app = ctl.counters.setdefault(app, {})
    per_app[key] = per_app.get(key, 0) + 1


def too_many_requests(request: web.Request, seconds: float, headers: dict[str, str] | None = None) -> web.Response:
    """Graph's 429: the envelope and Retry-After in whole seconds (https://learn.microsoft.com/graph/throttling)."""
    retry = {"Retry-After": str(max(1, math.ceil(seconds - 1e-9)))}
    return graph_error(429, "TooManyRequests", "Please retry again later.", request, retry | (headers or {}))


def throttle(ctl: Controls, state: TenantState, request: web.Request, app: str) -> tuple[web.Response | None, dict]:
    """Charge the request to every applicable bucket, or the 429 when one has no room (nothing is charged then)."""
    now = state.now()
    units, writes = cost(request.method, request.path, dict(request.query))
    rel = relative_path(request.path)
    charged = [(rule, _bucket(ctl, rule, app, now)) for rule in ctl.rules if _applies(rule, rel)]
    charged = [(rule, bucket, _amounts(rule, units, writes)) for rule, bucket in charged]
    charged = [(rule, bucket, amount) for rule, bucket, amount in charged if amount]
    waits = [(bucket.wait(now, amount), rule) for rule, bucket, amount in charged]
    worst, rule = max(waits, key=lambda pair: pair[0], default=(0.0, None))
    if rule is not None and worst > 0:
        limit = "Write" if rule.measure == "writes" else "ReadWrite"
        scope = f"{rule.scope}/{limit}/{app}/{state.tenant_id}"
        extra = {"x-ms-throttle-scope": scope, "x-ms-throttle-information": rule.information}
        return too_many_requests(request, worst, extra), {}
    used = 0.0
    for _, bucket, amount in charged:
        bucket.take(now, amount)
        used = max(used, 1 - bucket.level / bucket.capacity)
    headers = {"x-ms-resource-unit": str(units)}
    if used > 0.8:
        headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
    return None, headers


# --- latency and faults ----------------------------------------------------------------------------------------


async def inject_latency(ctl: Controls, request: web.Request) -> float:
    """Sleep the matching rules' delay; stop early once the client has gone (so servers shut down promptly).

    A $batch pays network latency once, for itself; its items only pay rules marked batchItems."""
    item = BATCH_ITEM_HEADER in request.headers
    rules = [r for r in ctl.latency if _matches(r, request) and (r.batchItems or not item)]
    delay = sum(r.fixedMs + ctl.rng.uniform(0, r.jitterMs) for r in rules)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay / 1000
    while loop.time() < deadline:
        if request.transport is None or request.transport.is_closing():
            break
        await asyncio.sleep(min(0.05, deadline - loop.time()))
    return delay


def pick_fault(ctl: Controls, request: web.Request) -> Fault | None:
    for fault in ctl.faults:
        if not _matches(fault, request):
            continue
        if fault.remaining:
            fault.remaining -= 1
        elif not (fault.rate and ctl.rng.random() < fault.rate):
            continue
        fault.fired += 1
        return fault
    return None


FAULT_CODES = {  # https://learn.microsoft.com/graph/errors (error resource type codes)
    500: ("generalException", "An unspecified error has occurred."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Try again after a delay."),
    504: ("timeout", "The operation timed out before it could be completed."),
}


def fault_response(fault: Fault, request: web.Request) -> web.Response:
    if fault.status == 429:
        return too_many_requests(request, fault.retryAfter)
    code, message = FAULT_CODES[fault.status]
    headers = {"Retry-After": str(fault.retryAfter)} if fault.status in (503, 504) and fault.retryAfter else None
    return graph_error(fault.status, code, message, request, headers)


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer; the client sees a transport error.

    aiohttp treats a CancelledError out of a handler as a client that went away: no 500 is written, nothing is
    logged above debug."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


# --- the middleware --------------------------------------------------------------------------------------------


def _log(ctl: Controls, state: TenantState, request: web.Request, app: str | None) -> dict[str, Any]:
    now = state.now().isoformat()
    entry: dict[str, Any] = {"method": request.method, "path": request.path, "appid": app, "time": now, "at": now}
    if request.query_string:
        entry["query"] = request.query_string  # Graph query options; tokens and bodies are never logged
    item = request.headers.get(BATCH_ITEM_HEADER)
    if item is not None:
        entry["batchItem"] = item
    ctl.log.append(entry)
    return entry


@web.middleware
async def graph_pipeline(request: web.Request, handler):
    if request.path.startswith(CONTROL_PREFIX):
        if request.remote not in LOOPBACK:  # the control API has no auth: loopback callers only
            return graph_error(403, "Forbidden", "The control API answers loopback callers only.", request)
        return await handler(request)
    state: TenantState = request.app[STATE]
    ctl = controls(state)
    app = caller_app(request)
    who = app or "anonymous"
    entry = _log(ctl, state, request, app)
    _count(ctl, who, "requests")
    entry["latencyMs"] = round(await inject_latency(ctl, request), 3)
    fault = pick_fault(ctl, request)
    if fault is not None:
        _count(ctl, who, f"fault{fault.status or 'Drop'}")
        entry["status"] = fault.status or "dropped"
        if fault.status == 0:
            return drop(request)
        if fault.status == 429:
            _count(ctl, who, "429")
        return fault_response(fault, request)
    extra: dict[str, str] = {}
    graph = request.path.startswith(GRAPH_PREFIXES) and not request.path.endswith("/$batch")
    if graph and ctl.enabled and app is not None:
        refused, extra = throttle(ctl, state, request, app)
        if refused is not None:
            _count(ctl, who, "throttled")
            _count(ctl, who, "429")
            entry["status"] = 429
            return refused
    try:
        response = await handler(request)
    except GraphError as exc:
        entry["status"] = exc.status
        exc.headers = {**extra, **exc.headers}
        raise
    except web.HTTPException as exc:
        entry["status"] = exc.status
        raise
    entry["status"] = response.status
    if extra and not response.prepared:
        response.headers.update(extra)
    return response


MIDDLEWARES = (graph_pipeline,)


def setup(app: web.Application) -> None:
    """The middleware is installed by server.build_app (MIDDLEWARES); the control routes live in control.py."""
