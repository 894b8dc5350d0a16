"""HTTP triggers like the Functions host: /<routePrefix>/<route> with ASP.NET route templates, methods, function
keys, and the worker's conversion of azure.functions.HttpRequest/HttpResponse.

- Route templates ({id}, {id:guid}, {id:int:min(1)}, {name?}, {name=default}, {*rest}):
  https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#customize-the-http-endpoint
  and the constraint list of https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-constraints
- "methods": if not specified, the function responds to all HTTP methods (HTTP trigger configuration table).
- Keys: FUNCTION and ADMIN levels take the key in the `code` query parameter or the `x-functions-key` header
  (#api-key-authorization). Core Tools does not check keys locally; the dev host does, so tests cover them,
  with one key (DevHost:FunctionKey / DEVHOST_FUNCTION_KEY) standing for the function and master keys.
- A wrong method on a known route answers 405 with Allow here; the real host answers 404
  (azure-functions-host#10098), so clients must not depend on either.
- Responses: the worker's azure.functions.http.HttpResponseConverter decides the Content-Type (text/* gets
  "; charset=…") and splits Set-Cookie headers; we reuse it.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.http import HttpResponseConverter

from .loader import FunctionSpec, Invoker

log = logging.getLogger("local.host")
_PARAM = re.compile(r"\{(\*{0,2})([A-Za-z_]\w*)((?::[A-Za-z]+(?:\((?:[^()]|\([^()]*\))*\))?)*)(?:=([^}?]*))?(\?)?\}")
_CONSTRAINT = re.compile(r":([A-Za-z]+)(?:\(((?:[^()]|\([^()]*\))*)\))?")
_GUID = re.compile(r"^(?:\{)?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?:\})?$")


def _is_number(value: str, kind: type) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _constraint(name: str, arg: str | None) -> Callable[[str], bool]:
    """A check for one ASP.NET route constraint; unknown ones are refused at start rather than ignored."""
    lowered = name.lower()
    args = [a.strip() for a in (arg or "").split(",")]
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: bool(re.fullmatch(r"-?\d+", v)) and -(2**31) <= int(v) < 2**31,
        "long": lambda v: bool(re.fullmatch(r"-?\d+", v)) and -(2**63) <= int(v) < 2**63,
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": lambda v: bool(_GUID.match(v)),
        "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
        "decimal": lambda v: _is_number(v, float),
        "double": lambda v: _is_number(v, float),
        "float": lambda v: _is_number(v, float),
        "datetime": _is_datetime,
        "required": lambda v: v != "",
    }
    if lowered in simple:
        return simple[lowered]
    if lowered == "minlength":
        return lambda v: len(v) >= int(args[0])
    if lowered == "maxlength":
        return lambda v: len(v) <= int(args[0])
    if lowered == "length":
        low, high = (int(args[0]), int(args[-1]))
        return lambda v: low <= len(v) <= high
    if lowered in ("min", "max", "range"):
        low = int(args[0]) if lowered != "max" else None
        high = int(args[-1]) if lowered != "min" else None
        return lambda v: (
            bool(re.fullmatch(r"-?\d+", v)) and (low is None or int(v) >= low) and (high is None or int(v) <= high)
        )
    if lowered == "regex":
        pattern = re.compile(arg or "", re.IGNORECASE)
        return lambda v: bool(pattern.search(v))
    raise ValueError(f"route constraint {name!r} is not supported by the dev host")


@dataclass
class Route:
    spec: FunctionSpec
    pattern: re.Pattern
    checks: dict[str, list[Callable[[str], bool]]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    rank: tuple = ()

    @classmethod
    def compile(cls, spec: FunctionSpec, prefix: str) -> Route:
        template = (spec.route or spec.name).strip("/")
        regex, position = "", 0
        checks: dict[str, list[Callable[[str], bool]]] = {}
        defaults: dict[str, str] = {}
        for match in _PARAM.finditer(template):
            regex += re.escape(template[position : match.start()])
            catch_all, name, constraints, default, optional = match.groups()
            checks[name] = [_constraint(c, a) for c, a in _CONSTRAINT.findall(constraints or "")]
            if default is not None:
                defaults[name] = default
            body = ".*" if catch_all else "[^/]+"
            if optional or default is not None or catch_all:
                # An optional last segment may drop its slash: "items/{id?}" matches "items".
                if regex.endswith("/"):
                    regex = regex[:-1] + f"(?:/(?P<{name}>{body}))?"
                else:
                    regex += f"(?P<{name}>{body})?"
            else:
                regex += f"(?P<{name}>{body})"
            position = match.end()
        regex += re.escape(template[position:])
        base = f"/{prefix}" if prefix else ""
        full = f"^{re.escape(base)}/{regex}/?$" if template else f"^{re.escape(base)}/?$"
        return cls(spec, re.compile(full, re.IGNORECASE), checks, defaults, _rank(template))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if not found:
            return None
        params = {k: v for k, v in found.groupdict().items() if v not in (None, "")}
        for name, value in self.defaults.items():
            params.setdefault(name, value)
        for name, checks in self.checks.items():
            if name in params and not all(check(params[name]) for check in checks):
                return None
        return params


def _rank(template: str) -> tuple:
    """ASP.NET tries literal segments before parameters, constrained before plain, catch-alls last."""
    ranks = []
    for segment in template.split("/"):
        if "{" not in segment:
            ranks.append(0)
        elif "{*" in segment:
            ranks.append(4)
        elif "?" in segment or "=" in segment:
            ranks.append(3)
        elif ":" in segment:
            ranks.append(1)
        else:
            ranks.append(2)
    return (*ranks, -len(ranks))


class HttpFunctions:
    """The aiohttp handler in front of every HTTP-triggered function."""

    def __init__(self, specs: list[FunctionSpec], route_prefix: str, function_key: str, invoker: Invoker):
        routes = [Route.compile(s, route_prefix) for s in specs if s.trigger == "httpTrigger"]
        self.routes = sorted(routes, key=lambda r: r.rank)
        self.route_prefix = route_prefix
        self.function_key = function_key
        self.invoke = invoker

    def authorised(self, request: web.Request, spec: FunctionSpec) -> bool:
        if spec.auth_level == "ANONYMOUS":
            return True
        presented = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(presented.encode(), self.function_key.encode())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        matched = [(r, params) for r in self.routes if (params := r.match(request.path)) is not None]
        if not matched:
            raise web.HTTPNotFound()
        allowed = [(r, params) for r, params in matched if r.spec.allows(request.method)]
        if not allowed:
            methods = sorted({m for r, _ in matched for m in r.spec.methods})
            raise web.HTTPMethodNotAllowed(request.method, methods)
        route, params = allowed[0]
        if not self.authorised(request, route.spec):
            return web.Response(status=401)
        incoming = await to_http_request(request, params)
        try:
            result = await self.invoke(
                route.spec, incoming, "This function was programmatically called via the host APIs."
            )
        except Exception:  # logged with its traceback by the invoker; the caller sees a bare 500 like the host's
            return web.Response(status=500)
        return to_aiohttp(result)


async def to_http_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    """The worker's HttpRequest: repeated headers joined with ", " (as ASP.NET hands them to the worker)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params={k: request.query.getone(k) for k in request.query},
        route_params=route_params,
        body=await request.read(),
    )


def to_aiohttp(result: Any) -> web.Response:
    """The function's return value as the host would send it."""
    if result is None:  # nothing bound to $return: the host answers 204 (unconfirmed; docs are silent)
        return web.Response(status=204)
    if not isinstance(result, (str, func.HttpResponse)):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, not HttpResponse or str")
    datum = HttpResponseConverter.encode(result, expected_type=None)
    if datum.type == "string":
        return web.Response(status=200, text=datum.value, content_type="text/plain")
    value = datum.value
    response = web.Response(status=int(value["status_code"].value), body=value["body"].value or b"")
    for name, header in value["headers"].items():
        response.headers[name] = header.value
    for cookie in value["cookies"] or []:
        for morsel in cookie.values():
            response.headers.add("Set-Cookie", morsel.OutputString())
    return response
