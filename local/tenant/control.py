"""The general control API under /_control (no auth; the tenant listens on loopback only).

| GET  /_control/health                                    | liveness                                    |
| GET  /_control/clock                                     | the tenant clock and its offset             |
| POST /_control/clock {"advanceSeconds": n} | {"offsetSeconds": n} | move the tenant clock                 |
| GET  /_control/state/users/{id}                          | a user as stored, methods included (tests)  |
Faults, latency, throttling and the request log: see throttle.py. EM: em.py. Mail and bots: acs.py, bot.py.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from .appkeys import STATE
from .errors import bad_request


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"status": "ok", "tenantId": state.tenant_id})


async def get_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"now": state.now().isoformat(), "offsetSeconds": state.clock_offset.total_seconds()})


async def set_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await request.json()
    if "advanceSeconds" in body:
        state.clock_offset += timedelta(seconds=float(body["advanceSeconds"]))
    elif "offsetSeconds" in body:
        state.clock_offset = timedelta(seconds=float(body["offsetSeconds"]))
    else:
        raise bad_request("advanceSeconds or offsetSeconds is required")
    return await get_clock(request)


async def get_user(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].user(request.match_info["id"]))


def setup(app: web.Application) -> None:
    app.router.add_get("/_control/health", health)
    app.router.add_get("/_control/clock", get_clock)
    app.router.add_post("/_control/clock", set_clock)
    app.router.add_get("/_control/state/users/{id}", get_user)
