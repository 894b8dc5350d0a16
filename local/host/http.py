"""HTTP triggers: routes like the Functions host (/api/<route>, {param}, {param:constraint}, {param?}),
methods, and function keys for FUNCTION/ADMIN auth levels (via ?code= or x-functions-key).

Route templates: https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#customize-the-http-endpoint
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass

import azure.functions as func
from aiohttp import web

from .functions import FunctionSpec

log = logging.getLogger("local.host")
_PARAM = re.compile(r"\{(\*?)(\w+)(?::(\w+)(?:\([^)]*\))?)?(\?)?\}")
_CONSTRAINTS = {
    "guid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "int": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
}


@dataclass
class Route:
    spec: FunctionSpec
    pattern: re.Pattern

    @classmethod
    def compile(cls, spec: FunctionSpec, prefix: str) -> Route:
        template = spec.route.strip("/") if spec.route else spec.name
        regex = ""
        position = 0
        for match in _PARAM.finditer(template):
            regex += re.escape(template[position : match.start()])
            catch_all, name, constraint, optional = match.groups()
            body = ".+" if catch_all else _CONSTRAINTS.get((constraint or "").lower(), "[^/]+")
            if optional:
                if regex.endswith("/"):
                    regex = regex[:-1] + f"(?:/(?P<{name}>{body}))?"
                else:
                    regex += f"(?P<{name}>{body})?"
            else:
                regex += f"(?P<{name}>{body})"
            position = match.end()
        regex += re.escape(template[position:])
        base = f"/{prefix}" if prefix else ""
        return cls(spec, re.compile(f"^{re.escape(base)}/{regex}/?$", re.IGNORECASE))


class HttpFunctions:
    def __init__(self, specs: list[FunctionSpec], route_prefix: str, function_key: str):
        self.routes = [Route.compile(s, route_prefix) for s in specs if s.trigger == "httpTrigger"]
        self.function_key = function_key

    def authorised(self, request: web.Request, spec: FunctionSpec) -> bool:
        if spec.auth_level == "ANONYMOUS":
            return True
        presented = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(presented.encode(), self.function_key.encode())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        matched = [(r, m) for r in self.routes if (m := r.pattern.match(request.path))]
        if not matched:
            raise web.HTTPNotFound()
        allowed = [(r, m) for r, m in matched if request.method in r.spec.methods]
        if not allowed:
            methods = sorted({meth for r, _ in matched for meth in r.spec.methods})
            raise web.HTTPMethodNotAllowed(request.method, methods)
        route, match = allowed[0]
        if not self.authorised(request, route.spec):
            return web.Response(status=401)
        body = await request.read()
        params = {k: v for k, v in match.groupdict().items() if v is not None}
        incoming = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query),
            route_params=params,
            body=body,
        )
        try:
            result = await route.spec.invoke(incoming)
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed)", route.spec.name)
            return web.Response(status=500)
        log.info("Executed 'Functions.%s' (Succeeded)", route.spec.name)
        return to_aiohttp(result)


def to_aiohttp(result: object) -> web.Response:
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str):
        return web.Response(text=result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, not HttpResponse")
    headers = {k: v for k, v in result.headers.items() if k.lower() != "content-type"}
    content_type = result.headers.get("content-type") or result.mimetype or "text/plain"
    response = web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    response.content_type = content_type.split(";")[0]
    if result.charset and not content_type.startswith(("image/", "application/octet-stream")):
        response.charset = result.charset
    return response
