"""Loads the function app (module `app`) and runs its functions the way the Python worker does.

Indexing follows the v2 programming model: `app.get_functions()` (callable only once per FunctionApp, so the
result is cached per app object) and each function's function.json bindings.
https://learn.microsoft.com/azure/azure-functions/functions-reference-python#programming-model
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import azure.functions as func

from .settings import format_timespan

log = logging.getLogger("local.host")
TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
_DESCRIBED: dict[int, tuple[Any, list[FunctionSpec]]] = {}
_DESCRIBED_LOCK = threading.Lock()


class FunctionTimeout(Exception):
    """The invocation ran past host.json functionTimeout."""


@dataclass
class FunctionSpec:
    name: str
    trigger: str  # httpTrigger, queueTrigger, timerTrigger
    arg_name: str
    fn: Callable[..., Any]
    bindings: list[dict[str, Any]] = field(default_factory=list)
    route: str | None = None
    methods: list[str] = field(default_factory=list)  # empty: every method (no "methods" in the binding)
    auth_level: str = "FUNCTION"
    queue_name: str | None = None
    connection: str = "AzureWebJobsStorage"
    schedule: str | None = None
    run_on_startup: bool = False
    unsupported: list[str] = field(default_factory=list)  # bindings the dev host cannot provide

    @property
    def wants_context(self) -> bool:
        return "context" in inspect.signature(self.fn).parameters

    def allows(self, method: str) -> bool:
        return not self.methods or method.upper() in self.methods


def load_app(module_name: str) -> Any:
    """Import `module_name` and return its FunctionApp (named `app`)."""
    module = importlib.import_module(module_name)
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        raise RuntimeError(f"{module_name} has no `app` (azure.functions.FunctionApp)")
    return app


def functions_of(app: Any) -> list[FunctionSpec]:
    """The app's functions; get_functions() runs once per app object, later hosts reuse the result."""
    with _DESCRIBED_LOCK:
        cached = _DESCRIBED.get(id(app))
        if cached is None or cached[0] is not app:  # the app is kept in the entry, so its id cannot be reused
            cached = (app, describe(app))
            _DESCRIBED[id(app)] = cached
        return cached[1]


def describe(app: Any) -> list[FunctionSpec]:
    """FunctionSpecs for every function. Calls app.get_functions(): use functions_of() instead."""
    return [_spec(function) for function in app.get_functions()]


def _spec(function: Any) -> FunctionSpec:
    bindings = json.loads(function.get_function_json())["bindings"]
    trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
    name = function.get_function_name()
    if trigger is None:
        raise RuntimeError(f"function {name} has no trigger binding")
    spec = FunctionSpec(
        name=name, trigger=trigger["type"], arg_name=trigger["name"], fn=function.get_user_function(), bindings=bindings
    )
    if spec.trigger == "httpTrigger":
        spec.route = (trigger.get("route") or name).strip("/")
        spec.methods = [str(m).upper() for m in trigger.get("methods") or []]
        spec.auth_level = str(trigger.get("authLevel") or "FUNCTION").upper()
    elif spec.trigger == "queueTrigger":
        spec.queue_name = trigger["queueName"]  # may hold %SETTING%: resolved per host start
        spec.connection = trigger.get("connection") or "AzureWebJobsStorage"
    elif spec.trigger == "timerTrigger":
        spec.schedule = trigger["schedule"]
        spec.run_on_startup = bool(trigger.get("runOnStartup", False))
    else:
        spec.unsupported.append(spec.trigger)
    for binding in bindings:
        if binding is not trigger and not (binding.get("type") == "http" and spec.trigger == "httpTrigger"):
            spec.unsupported.append(f"{binding.get('type')} ({binding.get('direction')}, {binding.get('name')})")
    return spec


class Context(func.Context):
    """The `context` argument the worker passes to a function that declares one."""

    def __init__(self, spec: FunctionSpec, invocation_id: str):
        self._spec = spec
        self._invocation_id = invocation_id
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._local

    @property
    def function_name(self) -> str:
        return self._spec.name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


class Invoker:
    """Calls user functions like the Python worker: coroutines on the host's loop, plain functions on a thread
    pool (PYTHON_THREADPOOL_THREAD_COUNT, else Python's default size), with host.json functionTimeout, and
    logs Executing/Executed lines in the host's words."""

    def __init__(self, timeout: timedelta | None):
        self.timeout = timeout
        workers = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self.executor = ThreadPoolExecutor(
            max_workers=int(workers) if workers else None, thread_name_prefix="devhost-worker"
        )

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, spec: FunctionSpec, argument: Any, reason: str) -> Any:
        invocation_id = str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.monotonic()
        try:
            result = await self._run(spec, argument, invocation_id)
        except Exception:
            elapsed = int((time.monotonic() - started) * 1000)
            log.exception("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", spec.name, invocation_id, elapsed)
            raise
        elapsed = int((time.monotonic() - started) * 1000)
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", spec.name, invocation_id, elapsed)
        return result

    async def _run(self, spec: FunctionSpec, argument: Any, invocation_id: str) -> Any:
        if spec.unsupported:
            raise RuntimeError(f"the dev host cannot provide binding(s) {', '.join(spec.unsupported)} of {spec.name}")
        kwargs = {spec.arg_name: argument}
        if spec.wants_context:
            kwargs["context"] = Context(spec, invocation_id)
        if inspect.iscoroutinefunction(spec.fn):
            pending = spec.fn(**kwargs)
        else:
            call = functools.partial(contextvars.copy_context().run, spec.fn, **kwargs)
            pending = asyncio.get_running_loop().run_in_executor(self.executor, call)
        if self.timeout is None:
            return await pending
        try:
            return await asyncio.wait_for(pending, self.timeout.total_seconds())
        except TimeoutError:
            # A sync function's thread cannot be stopped; like the host we stop waiting and fail the invocation.
            raise FunctionTimeout(
                f"Timeout value of {format_timespan(self.timeout)} exceeded by function 'Functions.{spec.name}' "
                f"(Id: '{invocation_id}'). Initiating cancellation."
            ) from None
