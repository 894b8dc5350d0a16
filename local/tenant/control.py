"""The local tenant's general control API under /_control (no auth: loopback callers only).

| endpoint | body or query | does |
|---|---|---|
| GET /_control/health |  | liveness and the tenant id |
| GET /_control/clock |  | the tenant clock (state.now()) and offset |
| POST /_control/clock | {"advanceSeconds": n} / {"offsetSeconds": n} | moves state.clock_offset (refills buckets) |
| GET /_control/faults |  | fault rules, each with how often it fired |
| PUT /_control/faults | [rule] or {"faults": [rule], "seed": n} | replaces the rules (reseeds the RNG) |
| DELETE /_control/faults |  | removes every fault rule |
| GET /_control/latency |  | latency rules |
| PUT /_control/latency | [rule] or {"latency": [rule], "seed": n} | replaces the rules (reseeds the RNG) |
| DELETE /_control/latency |  | removes every latency rule |
| GET /_control/throttle |  | enabled, rules, buckets now, counters/app |
| PUT /_control/throttle | {enabled?, limits?, windows?, tenantSize?} | overrides limits by rule name; buckets full |
| DELETE /_control/throttle |  | documented limits back, buckets + counters |
| POST /_control/reset-throttle |  | buckets refilled, counters cleared |
| GET /_control/requests | ?method= &prefix= &contains= &limit= | request log (last 2,000), oldest first |
| DELETE /_control/requests |  | empties the request log |
| GET /_control/batch |  | $batch settings |
| PUT /_control/batch | {"sequencing": "any" or "strict"} | strict: "fully sequential or fully parallel" |
| GET /_control/state/users/{id} |  | a user as stored, methods included |
| POST /_control/users/{id}/passkey | {kind?: fido2/authenticator/windowsHello, displayName?} | the user registers a
passkey now (tenant clock): a fido2 method (authenticator: Microsoft Authenticator's AAGUID), or Windows Hello |
| POST /_control/users/{id}/tap/use |  | the user signs in with their pass: a one-time pass becomes OneTimeUsed |

Fault rule: {pattern (regex) or prefix, method?, status: 429|500|503|504|"drop", rate?, remaining? (the next N
matching requests), retryAfter?}; with neither rate nor remaining it always fires. Latency rule: {pattern or prefix,
method?, fixedMs, jitterMs, batchItems?}. Throttle rule names: resourceUnits, writes, tenantWrites, reports.
Counters per app: requests, throttled, 429, fault<status>. A request-log entry: method, path, query, status, appid,
time, latencyMs, batchItem; never bodies, never tokens. EM, mail and bots have their own routes (em.py, acs.py,
bot.py).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from . import throttle
from .appkeys import STATE
from .state import TenantState


def _bad(message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=400)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _controls(request: web.Request) -> throttle.Controls:
    return throttle.controls(request.app[STATE])


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "tenantId": request.app[STATE].tenant_id})


async def get_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"now": state.now().isoformat(), "offsetSeconds": state.clock_offset.total_seconds()})


async def set_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _body(request)
    if not isinstance(body, dict) or not ({"advanceSeconds", "offsetSeconds"} & set(body)):
        return _bad("advanceSeconds or offsetSeconds is required")
    try:
        if "advanceSeconds" in body:
            state.clock_offset += timedelta(seconds=float(body["advanceSeconds"]))
        else:
            state.clock_offset = timedelta(seconds=float(body["offsetSeconds"]))
    except (TypeError, ValueError):
        return _bad("advanceSeconds and offsetSeconds are numbers of seconds")
    return await get_clock(request)


def _rules_and_seed(body: Any, key: str) -> tuple[list[dict[str, Any]], int | None]:
    if isinstance(body, dict):
        rules, seed = body.get(key, []), body.get("seed")
    else:
        rules, seed = body, None
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ValueError(f"a list of rules (or {{'{key}': [...], 'seed': n}}) is required")
    return rules, seed


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(throttle.faults_json(_controls(request)))


async def put_faults(request: web.Request) -> web.Response:
    ctl = _controls(request)
    try:
        rules, seed = _rules_and_seed(await _body(request), "faults")
        ctl.faults = [throttle.parse_fault(r) for r in rules]
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    if seed is not None:
        ctl.rng.seed(seed)
    return web.json_response(throttle.faults_json(ctl))


async def delete_faults(request: web.Request) -> web.Response:
    _controls(request).faults = []
    return web.Response(status=204)


async def get_latency(request: web.Request) -> web.Response:
    return web.json_response(throttle.latency_json(_controls(request)))


async def put_latency(request: web.Request) -> web.Response:
    ctl = _controls(request)
    try:
        rules, seed = _rules_and_seed(await _body(request), "latency")
        ctl.latency = [throttle.parse_latency(r) for r in rules]
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    if seed is not None:
        ctl.rng.seed(seed)
    return web.json_response(throttle.latency_json(ctl))


async def delete_latency(request: web.Request) -> web.Response:
    _controls(request).latency = []
    return web.Response(status=204)


async def get_throttle(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(throttle.describe(throttle.controls(state), state))


def _apply_limits(ctl: throttle.Controls, state: TenantState, body: dict[str, Any]) -> None:
    if "tenantSize" in body:
        if body["tenantSize"] not in throttle.RU_PER_10S:
            raise ValueError("tenantSize is small, medium or large")
        state.tenant["size"] = body["tenantSize"]
    by_name = {rule.name: rule for rule in ctl.rules}
    if "tenantSize" in body:
        by_name["resourceUnits"].limit = throttle.RU_PER_10S[body["tenantSize"]]
    for key, attribute in (("limits", "limit"), ("windows", "window_s")):
        for name, value in (body.get(key) or {}).items():
            if name not in by_name:
                raise ValueError(f"unknown rule {name!r}; rules: {', '.join(by_name)}")
            if float(value) <= 0:
                raise ValueError(f"{key}.{name} must be positive")
            setattr(by_name[name], attribute, float(value))
    if "enabled" in body:
        ctl.enabled = bool(body["enabled"])
    ctl.buckets.clear()


async def put_throttle(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _body(request)
    if not isinstance(body, dict):
        return _bad("a JSON object is required")
    try:
        _apply_limits(throttle.controls(state), state, body)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return await get_throttle(request)


async def delete_throttle(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ctl = throttle.controls(state)
    ctl.rules = throttle.default_rules(state.tenant.get("size", "small"))
    ctl.enabled = True
    ctl.buckets.clear()
    ctl.counters.clear()
    return await get_throttle(request)


async def reset_throttle(request: web.Request) -> web.Response:
    ctl = _controls(request)
    ctl.buckets.clear()
    ctl.counters.clear()
    return web.Response(status=204)


async def get_requests(request: web.Request) -> web.Response:
    entries = list(_controls(request).log)
    query = request.query
    if query.get("method"):
        entries = [e for e in entries if e["method"] == query["method"].upper()]
    if query.get("prefix"):
        entries = [e for e in entries if e["path"].startswith(query["prefix"])]
    if query.get("contains"):
        entries = [e for e in entries if query["contains"] in e["path"]]
    if query.get("limit", "").isdigit():
        entries = entries[-int(query["limit"]) :]
    return web.json_response(entries)


async def delete_requests(request: web.Request) -> web.Response:
    _controls(request).log.clear()
    return web.Response(status=204)


async def get_batch(request: web.Request) -> web.Response:
    return web.json_response({"sequencing": _controls(request).batch_sequencing})


async def put_batch(request: web.Request) -> web.Response:
    body = await _body(request)
    if not isinstance(body, dict) or body.get("sequencing") not in ("any", "strict"):
        return _bad('{"sequencing": "any" | "strict"} is required')
    _controls(request).batch_sequencing = body["sequencing"]
    return await get_batch(request)


async def get_user(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].user(request.match_info["id"]))


# What a registration writes, per kind (fido2authenticationmethod, windowshelloforbusinessauthenticationmethod).
# Authenticator passkeys are fido2 methods whose AAGUID is Microsoft Authenticator's (iOS shown).
PASSKEYS = {
    "fido2": ("#microsoft.graph.fido2AuthenticationMethod", "YubiKey 5 NFC", "cb69481e-8ff7-4039-93ec-0a2729a154a8"),
    "authenticator": (
        "#microsoft.graph.fido2AuthenticationMethod",
        "Microsoft Authenticator - iOS",
        "90a3ccdf-635c-4729-a248-9b709135078f",
    ),
    "windowsHello": ("#microsoft.graph.windowsHelloForBusinessAuthenticationMethod", "LAPTOP-NEW", None),
}


async def register_passkey(request: web.Request) -> web.Response:
    """The user signs in with their pass and registers a passkey: the method appears with createdDateTime now."""
    state = request.app[STATE]
    user = state.user(request.match_info["id"])
    body = await _body(request) if request.can_read_body else {}
    body = body if isinstance(body, dict) else {}
    kind = body.get("kind", "fido2")
    if kind not in PASSKEYS:
        return _bad(f"kind is one of {', '.join(PASSKEYS)}")
    odata, name, aaguid = PASSKEYS[kind]
    method: dict[str, Any] = {
        "@odata.type": odata,
        "id": str(uuid.uuid4()),
        "displayName": str(body.get("displayName") or name),
        "createdDateTime": state.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if aaguid:
        method.update(aaGuid=aaguid, model=name, attestationCertificates=[], attestationLevel="attested")
    else:
        method["keyStrength"] = "normal"
    user["methods"].append(method)
    if user.get("defaultMethodId") is None:  # the first second factor becomes the default
        user["defaultMethodId"] = method["id"]
    return web.json_response(method, status=201)


async def use_pass(request: web.Request) -> web.Response:
    """The user signs in with their pass; a one-time pass cannot be used again (methodUsabilityReason OneTimeUsed)."""
    user = request.app[STATE].user(request.match_info["id"])
    passes = [
        m for m in user["methods"] if m["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    ]
    if not passes:
        return web.json_response({"error": {"code": "NotFound", "message": "the user has no pass"}}, status=404)
    if passes[-1].get("isUsableOnce"):
        passes[-1]["methodUsabilityReason"] = "OneTimeUsed"
    return web.json_response({"id": passes[-1]["id"], "usableOnce": bool(passes[-1].get("isUsableOnce"))})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/_control/health", health)
    r.add_get("/_control/clock", get_clock)
    r.add_post("/_control/clock", set_clock)
    for path, get, put, delete in (
        ("/_control/faults", get_faults, put_faults, delete_faults),
        ("/_control/latency", get_latency, put_latency, delete_latency),
        ("/_control/throttle", get_throttle, put_throttle, delete_throttle),
    ):
        r.add_get(path, get)
        r.add_put(path, put)
        r.add_delete(path, delete)
    r.add_post("/_control/reset-throttle", reset_throttle)
    r.add_get("/_control/requests", get_requests)
    r.add_delete("/_control/requests", delete_requests)
    r.add_get("/_control/batch", get_batch)
    r.add_put("/_control/batch", put_batch)
    r.add_get("/_control/state/users/{id}", get_user)
    r.add_post("/_control/users/{id}/passkey", register_passkey)
    r.add_post("/_control/users/{id}/tap/use", use_pass)
