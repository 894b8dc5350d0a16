"""The function app's functions as the dev host sees them: trigger, route, methods, auth level, queue, schedule."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FunctionSpec:
    name: str
    trigger: str  # httpTrigger, queueTrigger, timerTrigger
    arg_name: str
    fn: Callable[..., Any]
    route: str | None = None
    methods: list[str] = field(default_factory=list)
    auth_level: str = "FUNCTION"
    queue_name: str | None = None
    connection: str = "AzureWebJobsStorage"
    schedule: str | None = None
    run_on_startup: bool = False

    async def invoke(self, argument: Any) -> Any:
        """Call the user function as the Python worker does: async on the loop, sync on a thread."""
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**{self.arg_name: argument})
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.fn, **{self.arg_name: argument}))


def load_app(module_name: str):
    """Import `module_name` and return its FunctionApp (named `app`)."""
    module = importlib.import_module(module_name)
    app = getattr(module, "app", None)
    if app is None:
        raise RuntimeError(f"{module_name} has no `app` (azure.functions.FunctionApp)")
    return app


def describe(app) -> list[FunctionSpec]:
    """FunctionSpecs for every function. app.get_functions() may run only once per app: call this once."""
    specs = []
    for function in app.get_functions():
        bindings = json.loads(function.get_function_json())["bindings"]
        trigger = next(b for b in bindings if b["type"].endswith("Trigger"))
        spec = FunctionSpec(
            name=function.get_function_name(),
            trigger=trigger["type"],
            arg_name=trigger["name"],
            fn=function.get_user_function(),
        )
        if spec.trigger == "httpTrigger":
            spec.route = trigger.get("route") or spec.name
            spec.methods = [m.upper() for m in trigger.get("methods") or ["GET", "POST"]]
            spec.auth_level = str(trigger.get("authLevel", "FUNCTION")).upper()
        elif spec.trigger == "queueTrigger":
            spec.queue_name = trigger["queueName"]  # may hold %SETTING%: resolved per host start
            spec.connection = trigger.get("connection") or "AzureWebJobsStorage"
        elif spec.trigger == "timerTrigger":
            spec.schedule = trigger["schedule"]
            spec.run_on_startup = bool(trigger.get("runOnStartup", False))
        specs.append(spec)
    return specs
