"""DevHost: serves a FunctionApp's HTTP functions, polls its queues and runs its timers, in-process or standalone.

Admin API like the Functions host's (https://learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http):
- GET /admin/functions lists the functions (name, trigger, route, methods, authLevel, queue, schedule,
  invoke_url_template, config.bindings);
- POST /admin/functions/{name} with {"input": <string, number or boolean>} runs a queue or timer function now.
  The host answers 202 before the run; we answer 202 after it succeeds (so callers can look at its effects at
  once) and 500 with the error when it fails. Both need the function key (the host wants its master key);
- GET /admin/host/status answers {"state": "Running"}; GET /admin/host/ping answers 200 (both open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions.queue as fq
from aiohttp import web

from ..threaded import ThreadedServer
from .http import HttpFunctions
from .loader import FunctionSpec, Invoker, functions_of, load_app
from .queues import QueuePoller, connection_string
from .settings import HostConfig, LocalSettings, apply_values, resolve, restore_values
from .signin import middleware as signin_middleware
from .signin import routes as signin_routes
from .timers import TimerRunner

log = logging.getLogger("local.host")
DEFAULT_PORT = 7071
KEY_SETTINGS = ("DEVHOST_FUNCTION_KEY", "DevHost:FunctionKey", "DevHost__FunctionKey")


class DevHost(ThreadedServer):
    """`with DevHost(app, port=0) as host: host.url` (own thread and loop), `async with DevHost(...)` on the
    caller's loop, or `python -m local.host`.

    The first argument is a FunctionApp or the name of the module defining `app` (default function_app).
    local.settings.json Values are applied like Core Tools (existing non-empty variables win); `settings` are
    set over everything (a test's explicit choice). The environment is put back when the host stops.
    """

    thread_name = "dev-host"

    def __init__(
        self,
        app_or_module: Any = "function_app",
        *,
        app: Any = None,
        settings_file: Path | None = Path("local.settings.json"),
        host_json: Path | None = Path("host.json"),
        host: str = "127.0.0.1",
        port: int | None = None,
        function_key: str | None = None,
        settings: dict[str, str] | None = None,
        run_queues: bool = True,
        run_timers: bool = True,
        local_signin: bool | None = None,
    ):
        super().__init__()
        local = LocalSettings.read(settings_file)
        self._replaced = apply_values(local.values)
        for name, value in (settings or {}).items():
            self._replaced.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        try:
            self.config = HostConfig.load(host_json)
            key = function_key or next((os.environ[k] for k in KEY_SETTINGS if os.environ.get(k)), None)
            self.key_generated = key is None
            self.function_key = key or secrets.token_urlsafe(24)
            if app is None:
                app = load_app(app_or_module) if isinstance(app_or_module, str) else app_or_module
            self.app = app
            self.specs: list[FunctionSpec] = functions_of(self.app)
            self.invoker = Invoker(self.config.function_timeout)
            self.http = HttpFunctions(self.specs, self.config.route_prefix, self.function_key, self.invoker)
            self.pollers = [
                QueuePoller(s, self.config.queues, self.invoker) for s in self.specs if s.trigger == "queueTrigger"
            ]
            self.timers = {s.name: TimerRunner(s, self.invoker) for s in self.specs if s.trigger == "timerTrigger"}
        except BaseException:
            restore_values(self._replaced)
            raise
        self.host = host
        self.port = port if port is not None else (local.local_http_port or DEFAULT_PORT)
        self.run_queues = run_queues
        self.run_timers = run_timers
        # The Easy Auth stand-in (local/host/signin.py); read per request so tests may switch it.
        if local_signin is None:
            local_signin = os.environ.get("DEVHOST_LOCAL_SIGNIN", "").strip().lower() in ("1", "true", "yes")
        self.local_signin = local_signin
        self._runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None
        self._poll_stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._poller_tasks: list[asyncio.Task] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def route_url(self, spec: FunctionSpec) -> str:
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        return f"{self.url}{prefix}/{spec.route}"

    def web_app(self) -> web.Application:
        # 100 MB: the HTTP trigger's documented maximum request size (functions-bindings-http-webhook#limits).
        app = web.Application(
            client_max_size=100 * 1024 * 1024, middlewares=[signin_middleware(lambda: self.local_signin)]
        )
        app.router.add_routes(signin_routes(lambda: self.local_signin))
        app.router.add_get("/admin/host/status", self._status)
        app.router.add_get("/admin/host/ping", self._ping)
        app.router.add_get("/admin/functions", self._list)
        app.router.add_post("/admin/functions/{name}", self._run)
        app.router.add_route("*", "/{tail:.*}", self.http.handle)
        return app

    # -- admin API ---------------------------------------------------------------------------------------------

    def _admin_key_ok(self, request: web.Request) -> bool:
        presented = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return secrets.compare_digest(presented.encode(), self.function_key.encode())

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"state": "Running", "functions": len(self.specs)})

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._admin_key_ok(request):
            return web.Response(status=401)
        return web.json_response([self._describe(s) for s in self.specs])

    def _describe(self, spec: FunctionSpec) -> dict[str, Any]:
        http = spec.trigger == "httpTrigger"
        return {
            "name": spec.name,
            "trigger": spec.trigger,
            "route": spec.route,
            "methods": spec.methods or None,  # None: every method
            "authLevel": spec.auth_level if http else None,
            "queue": resolve(spec.queue_name) if spec.queue_name else None,
            "schedule": resolve(spec.schedule) if spec.schedule else None,
            "invoke_url_template": self.route_url(spec) if http else None,
            "config": {"bindings": spec.bindings},
        }

    async def _run(self, request: web.Request) -> web.Response:
        """Run a non-HTTP function now with {"input": ...} (string, number or boolean)."""
        if not self._admin_key_ok(request):
            return web.Response(status=401)
        spec = next((s for s in self.specs if s.name.lower() == request.match_info["name"].lower()), None)
        if spec is None:
            raise web.HTTPNotFound()
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError:
            return web.json_response({"error": 'the body must be JSON: {"input": "..."}'}, status=400)
        if not isinstance(body, dict) or isinstance(body.get("input"), (dict, list)):
            return web.json_response({"error": "input must be a string, number or boolean"}, status=400)
        raw = body.get("input")
        text = raw if isinstance(raw, str) else ("" if raw is None else json.dumps(raw))
        try:
            if spec.trigger == "timerTrigger":
                await self.timers[spec.name].fire()
            elif spec.trigger == "queueTrigger":
                await self.invoker(
                    spec, admin_queue_message(text), "This function was programmatically called via the host APIs."
                )
            else:
                return web.json_response({"error": "HTTP functions are called at their route"}, status=400)
        except Exception as exc:  # the invoker logged the traceback
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.Response(status=202)

    # -- life cycle --------------------------------------------------------------------------------------------

    async def start_async(self) -> None:
        self._stop = asyncio.Event()
        self._poll_stop = asyncio.Event()
        if self.run_queues:
            for poller in self.pollers:  # a missing connection fails the start, not a background task
                connection_string(poller.spec.connection)
        self._runner = web.AppRunner(self.web_app(), access_log=None, shutdown_timeout=10)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.run_queues:
            self._poller_tasks = [asyncio.create_task(p.run(self._poll_stop)) for p in self.pollers]
        if self.run_timers:
            self._tasks = [asyncio.create_task(t.run(self._stop)) for t in self.timers.values()]
        self._log_functions()

    def _log_functions(self) -> None:
        log.info("Functions:")
        for spec in self.specs:
            if spec.trigger == "httpTrigger":
                methods = ",".join(spec.methods) if spec.methods else "*"
                log.info("        %s: [%s] %s", spec.name, methods, self.route_url(spec))
            else:
                log.info("        %s: %s", spec.name, spec.trigger)
            if spec.unsupported:
                log.error("        %s uses binding(s) the dev host cannot provide: %s", spec.name, spec.unsupported)
        if self.key_generated:
            log.info(
                "Function key (FUNCTION/ADMIN routes and /admin): %s (generated: set DevHost:FunctionKey)",
                self.function_key,
            )
        log.info("Host started: %s", self.url)

    def stop_pollers(self) -> None:
        """Stop taking queue messages (benches drive the worker by hand after this)."""
        if self.loop is not None and self._poll_stop is not None:
            self.call(self._stop_pollers())

    async def _stop_pollers(self) -> None:
        if self._poll_stop is not None:
            self._poll_stop.set()
        for task in self._poller_tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 35)
        self._poller_tasks = []

    async def stop_async(self) -> None:
        try:
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
            self.invoker.close()
        finally:
            restore_values(self._replaced)
            self._replaced = {}

    def start(self) -> DevHost:
        try:
            return super().start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        super().stop()
        restore_values(self._replaced)  # also when the host was built but never started
        self._replaced = {}

    async def __aenter__(self) -> DevHost:
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


def admin_queue_message(text: str) -> fq.QueueMessage:
    """The message an on-demand queue invocation receives: the input as its body, first dequeue."""
    now = datetime.now(UTC)
    return fq.QueueMessage(
        id=str(uuid.uuid4()),
        body=text.encode("utf-8"),
        dequeue_count=1,
        insertion_time=now,
        expiration_time=now + timedelta(days=7),
        time_next_visible=now,
        pop_receipt=None,
    )
