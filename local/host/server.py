"""DevHost: serves a FunctionApp's HTTP functions, polls its queues and runs its timers, in-process or standalone.

Admin API like the Functions host's: GET /admin/functions lists the functions; POST /admin/functions/{name}
with {"input": "..."} runs a queue or timer function on demand; GET /admin/host/status answers "Running".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path

import azure.functions.queue as fq
from aiohttp import web

from ..threaded import ThreadedServer
from .config import HostConfig, load_settings, resolve
from .functions import FunctionSpec, describe, load_app
from .http import HttpFunctions
from .queues import QueuePoller
from .signin import middleware as signin_middleware
from .signin import routes as signin_routes
from .timers import fire, run_timer

log = logging.getLogger("local.host")
_DESCRIBED: dict[int, list[FunctionSpec]] = {}  # get_functions() may run once per app object


def functions_of(app) -> list[FunctionSpec]:
    if id(app) not in _DESCRIBED:
        _DESCRIBED[id(app)] = describe(app)
    return _DESCRIBED[id(app)]


class DevHost(ThreadedServer):
    """`with DevHost(port=0) as host: host.url` — or `python -m local.host`."""

    thread_name = "dev-host"

    def __init__(
        self,
        module: str = "function_app",
        *,
        app=None,
        settings_file: Path | None = Path("local.settings.json"),
        host_json: Path | None = Path("host.json"),
        host: str = "127.0.0.1",
        port: int = 7071,
        function_key: str | None = None,
        settings: dict[str, str] | None = None,
        run_queues: bool = True,
        run_timers: bool = True,
        local_signin: bool | None = None,
    ):
        load_settings(settings_file)
        for name, value in (settings or {}).items():
            os.environ[name] = value
        self.config = HostConfig.load(host_json)
        self.function_key = function_key or os.environ.get("DEVHOST_FUNCTION_KEY") or secrets.token_urlsafe(24)
        self.app = app if app is not None else load_app(module)
        self.specs = functions_of(self.app)
        self.http = HttpFunctions(self.specs, self.config.route_prefix, self.function_key)
        self.pollers = [QueuePoller(s, self.config.queues) for s in self.specs if s.trigger == "queueTrigger"]
        self.timers = [s for s in self.specs if s.trigger == "timerTrigger"]
        self.host = host
        self.port = port
        self.run_queues = run_queues
        self.run_timers = run_timers
        # The Easy Auth stand-in (local/host/signin.py); read per request so tests may switch it.
        if local_signin is None:
            local_signin = os.environ.get("DEVHOST_LOCAL_SIGNIN", "").strip().lower() in ("1", "true", "yes")
        self.local_signin = local_signin
        super().__init__()
        self._runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._poller_tasks: list[asyncio.Task] = []
        self._poll_stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def web_app(self) -> web.Application:
        app = web.Application(
            client_max_size=100 * 1024 * 1024, middlewares=[signin_middleware(lambda: self.local_signin)]
        )
        app.router.add_routes(signin_routes(lambda: self.local_signin))
        app.router.add_get("/admin/host/status", self._status)
        app.router.add_get("/admin/functions", self._list)
        app.router.add_post("/admin/functions/{name}", self._run)
        app.router.add_route("*", "/{tail:.*}", self.http.handle)
        return app

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"state": "Running", "functions": len(self.specs)})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "name": s.name,
                    "trigger": s.trigger,
                    "route": s.route,
                    "methods": s.methods,
                    "authLevel": s.auth_level if s.trigger == "httpTrigger" else None,
                    "queue": resolve(s.queue_name) if s.queue_name else None,
                    "schedule": s.schedule,
                }
                for s in self.specs
            ]
        )

    async def _run(self, request: web.Request) -> web.Response:
        """Run a non-HTTP function now (the host's admin endpoint needs the master key; we take the key)."""
        presented = request.headers.get("x-functions-key") or request.query.get("code")
        if presented != self.function_key:
            return web.Response(status=401)
        spec = next((s for s in self.specs if s.name == request.match_info["name"]), None)
        if spec is None:
            raise web.HTTPNotFound()
        body = await request.json() if request.can_read_body else {}
        try:
            if spec.trigger == "timerTrigger":
                await fire(spec)
            elif spec.trigger == "queueTrigger":
                data = str(body.get("input", "")).encode()
                await spec.invoke(fq.QueueMessage(id="admin", body=data, dequeue_count=1))
            else:
                return web.json_response({"error": "HTTP functions are called at their route"}, status=400)
        except Exception as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.Response(status=202)

    async def start_async(self) -> None:
        self._stop = asyncio.Event()
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._poll_stop = asyncio.Event()
        if self.run_queues:
            self._poller_tasks = [asyncio.create_task(p.run(self._poll_stop)) for p in self.pollers]
        if self.run_timers:
            self._tasks += [asyncio.create_task(run_timer(s, self._stop)) for s in self.timers]
        log.info("Functions:")
        for s in self.specs:
            if s.trigger == "httpTrigger":
                log.info(
                    "  %s: [%s] %s/%s/%s", s.name, ",".join(s.methods), self.url, self.config.route_prefix, s.route
                )
            else:
                log.info("  %s: %s %s", s.name, s.trigger, resolve(s.queue_name or s.schedule or ""))

    def stop_pollers(self) -> None:
        """Stop taking queue messages (benches drive the worker by hand after this)."""
        if self.loop is not None and self._poll_stop is not None:
            self.call(self._stop_pollers())

    async def _stop_pollers(self) -> None:
        assert self._poll_stop is not None
        self._poll_stop.set()
        for task in self._poller_tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        self._poller_tasks = []

    async def stop_async(self) -> None:
        if self._poll_stop is not None:
            await self._stop_pollers()
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        self._tasks = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
