"""POST /v1.0/$batch and /beta/$batch: JSON batching as https://learn.microsoft.com/graph/json-batching describes it.

Rules (the page, unless a comment says otherwise): the body is {"requests": [...]} with at most 20 requests; each
has a string id (required, not case-sensitive, unique in the batch), method and url (required; url relative to the
version root, "/users/{id}" or "users?$select=id"), headers (required with a body: a body needs Content-Type), body
(a JSON object, or base64 for other content types) and dependsOn (ids that must run first). A malformed batch is
400 as a whole; a parseable one is 200 whatever its items did, with {"responses": [{id, status, headers, body}]}
in completion order (the page: "might appear in a different order than the requests"). A request whose dependency
failed (non-2xx) is 424 Failed Dependency and does not run.

Each item goes through exactly the pipeline a direct call does (bearer token, permissions, throttling, faults)
because it is sent to this tenant as a real HTTP sub-request with the batch's Authorization header; items run
concurrently unless dependsOn orders them. "Requests in a batch are evaluated individually against the applicable
throttling limits": each item gets its own 429 and Retry-After inside the 200. A dropped-connection fault on an
item drops the batch's own connection, since that is the only connection the client has.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from . import auth, throttle
from .appkeys import STATE, URLS
from .errors import bad_request, error_body

MAX_REQUESTS = 20
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
VERSIONS = ("/v1.0", "/beta")
# Response headers of an item that describe the transport, not the resource; the rest are passed on.
HOP_HEADERS = {"content-length", "date", "server", "connection", "transfer-encoding", "keep-alive"}
_SESSION = web.AppKey("batch_session", aiohttp.ClientSession)


class Dropped(Exception):
    """A sub-request's connection was dropped (fault injection): the batch's connection is dropped too."""


def _headers(item: dict[str, Any]) -> dict[str, str]:
    headers = item.get("headers") or {}
    if not isinstance(headers, dict):
        raise bad_request(f"The headers of request id '{item.get('id')}' must be a JSON object.", code="BadRequest")
    return {str(k): str(v) for k, v in headers.items()}


def _validate_item(item: Any, seen: dict[str, int], index: int) -> None:
    if not isinstance(item, dict):
        raise bad_request("Invalid batch payload format: each request must be a JSON object.", code="BadRequest")
    for name in ("id", "method", "url"):
        if item.get(name) in (None, ""):
            raise bad_request(f"Invalid batch payload format: the '{name}' property is required.", code="BadRequest")
    key = str(item["id"]).lower()  # ids are not case-sensitive
    if key in seen:
        raise bad_request(f"Batch request id '{item['id']}' is not unique in the batch.", code="BadRequest")
    seen[key] = index
    if str(item["method"]).upper() not in METHODS:
        raise bad_request(f"Invalid method '{item['method']}' in request id '{item['id']}'.", code="BadRequest")
    lowered = {k.lower() for k in _headers(item)}
    if "body" in item and "content-type" not in lowered:
        # Docs: "When a body is included with the request, the headers object must contain a value for
        # Content-Type." The batch is refused as a whole; the wording is what Graph is seen to answer.
        raise bad_request(
            f"Write request id : {item['id']} does not contain Content-Type header or body.", code="BadRequest"
        )


def _dependencies(item: dict[str, Any], seen: dict[str, int], index: int) -> list[str]:
    depends = item.get("dependsOn") or []
    if not isinstance(depends, list):
        raise bad_request(f"dependsOn of request id '{item['id']}' must be an array of ids.", code="BadRequest")
    for dependency in depends:
        # Graph refuses a dependency that is unknown or comes later in the array (msgraph-sdk-dotnet-core#891,
        # msgraph-sdk-java-core#71: "Invalid dependency for request Id"); the docs are silent.
        position = seen.get(str(dependency).lower())
        if position is None or position >= index:
            raise bad_request(f"Invalid dependency for request Id : {item['id']}.", code="BadRequest")
    return [str(d).lower() for d in depends]


def _check_sequencing(items: list[dict[str, Any]], depends: list[list[str]]) -> None:
    """Graph's "Batch should be either fully sequential or fully parallel" (the page's tip; a 400 in practice,
    microsoft-graph-docs#16280): no request names a dependency, or every request after the first names exactly
    one earlier request."""
    if not any(depends) or (not depends[0] and all(len(d) == 1 for d in depends[1:])):
        return
    raise bad_request("Batch should be either fully sequential or fully parallel.", code="BadRequest")


def validate(body: Any, sequencing: str) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The requests and their (lower-cased) dependencies, or the 400 that refuses the whole batch."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise bad_request("Invalid batch payload format: a 'requests' array is required.", code="BadRequest")
    items = body["requests"]
    if not items:
        raise bad_request("Invalid batch payload format: the 'requests' array is empty.", code="BadRequest")
    if len(items) > MAX_REQUESTS:
        # Docs: "JSON batch requests are currently limited to 20 individual requests"; message wording is ours.
        raise bad_request(
            f"The batch holds {len(items)} requests; JSON batch requests are limited to {MAX_REQUESTS}.",
            code="BadRequest",
        )
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        _validate_item(item, seen, index)
    depends = [_dependencies(item, seen, index) for index, item in enumerate(items)]
    if sequencing == "strict":
        _check_sequencing(items, depends)
    return items, depends


def target(url: str, version: str) -> str | None:
    """The item's path and query under this version root, or None when the url points elsewhere.

    msgraph-sdk (msgraph_core 1.5) sends absolute URLs (https://host/v1.0/users/...): Graph accepts them when they
    name the batch's own version, so they are reduced to the relative form; a relative url that repeats the
    version ("/v1.0/users") or names the other version is not under this root.
    """
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme or parts.netloc:
        if not path.startswith(version + "/"):
            return None
        path = path[len(version) :]
    elif not path.startswith("/"):
        path = "/" + path
    if path.startswith(tuple(v + "/" for v in VERSIONS)) or path in VERSIONS:
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def _payload(item: dict[str, Any], headers: dict[str, str]) -> bytes | None:
    if "body" not in item:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    body = item["body"]
    if "json" in content_type.lower() or not isinstance(body, str):
        return json.dumps(body).encode()
    try:  # "a base64 URL-encoded value, for example, when the body is an image"
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return body.encode()


def _response(item_id: str, status: int, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    result: dict[str, Any] = {"id": item_id, "status": status, "headers": headers}
    if raw:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        try:
            result["body"] = json.loads(raw) if "json" in content_type else base64.b64encode(raw).decode()
        except ValueError:
            result["body"] = base64.b64encode(raw).decode()
    return result


def _error_item(item_id: str, status: int, code: str, message: str) -> dict[str, Any]:
    headers = {"Cache-Control": "no-cache", "Content-Type": "application/json"}
    return {"id": item_id, "status": status, "headers": headers, "body": error_body(code, message)}


async def _send(request: web.Request, item: dict[str, Any], version: str) -> dict[str, Any]:
    item_id = str(item["id"])
    path = target(str(item["url"]), version)
    if path is None:
        message = f"Invalid request URL '{item['url']}': batch request urls are relative to {version}, e.g. /users."
        return _error_item(item_id, 400, "BadRequest", message)
    headers = _headers(item)
    headers["Authorization"] = request.headers.get("Authorization", "")
    headers[throttle.BATCH_ITEM_HEADER] = item_id
    url = request.app[URLS]["http"] + version + path
    try:
        async with request.app[_SESSION].request(
            str(item["method"]).upper(), url, data=_payload(item, headers), headers=headers, allow_redirects=False
        ) as answer:
            raw = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return _response(item_id, answer.status, kept, raw)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise Dropped(item_id) from exc


async def _run(
    request: web.Request, items: list[dict[str, Any]], depends: list[list[str]], version: str
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    outcome: dict[str, asyncio.Future[int]] = {str(i["id"]).lower(): loop.create_future() for i in items}
    responses: list[dict[str, Any]] = []

    async def run(item: dict[str, Any], needs: list[str]) -> None:
        key = str(item["id"]).lower()
        try:
            statuses = [await outcome[d] for d in needs]
            if any(not 200 <= s < 300 for s in statuses):
                result = _error_item(str(item["id"]), 424, "FailedDependency", "The dependent request failed.")
            else:
                result = await _send(request, item, version)
        except BaseException:
            outcome[key].set_result(0)
            raise
        outcome[key].set_result(result["status"])
        responses.append(result)  # completion order, as Graph may answer

    await asyncio.gather(*(run(item, needs) for item, needs in zip(items, depends, strict=True)))
    return responses


async def batch(request: web.Request) -> web.StreamResponse:
    auth.caller(request)  # the batch itself needs a valid token (401 otherwise); items check their permissions
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("Unable to read JSON request payload.", code="BadRequest") from None
    items, depends = validate(body, throttle.controls(request.app[STATE]).batch_sequencing)
    version = "/beta" if request.path.startswith("/beta/") else "/v1.0"
    try:
        responses = await _run(request, items, depends, version)
    except Dropped:
        return throttle.drop(request)
    return web.json_response({"responses": responses})


async def _open_session(app: web.Application):
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    # aiohttp silently resends an idempotent request whose connection was dropped, which would hide a
    # dropped-connection fault; it has no public switch for that.
    session._retry_connection = False
    app[_SESSION] = session
    yield
    await app[_SESSION].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_open_session)
    for version in VERSIONS:
        app.router.add_post(f"{version}/$batch", batch)
