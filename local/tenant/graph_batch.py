"""POST /$batch: JSON batching as https://learn.microsoft.com/graph/json-batching describes it.

At most 20 requests; ids unique; method and url required; url relative to the version root; a body needs a
Content-Type header; dependsOn orders requests and a failed dependency gives 424; the outer answer is 200
even when items fail; each item runs through the same pipeline as a direct call (auth, permissions,
throttling, faults) because it is sent to this tenant over loopback with the batch's bearer token.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from .appkeys import URLS
from .errors import bad_request, error_body

MAX_REQUESTS = 20
BATCH_ITEM_HEADER = "X-Local-Batch-Item"
VERSIONS = ("/v1.0", "/beta")
_SESSION = web.AppKey("batch_session", aiohttp.ClientSession)


def _validate(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise bad_request("Invalid batch payload format: a 'requests' array is required.", code="BadRequest")
    requests = body["requests"]
    if not requests:
        raise bad_request("Invalid batch payload format: no requests.", code="BadRequest")
    if len(requests) > MAX_REQUESTS:
        raise bad_request(f"The number of batch requests exceeds the limit of {MAX_REQUESTS}.", code="BadRequest")
    ids: set[str] = set()
    for item in requests:
        if not isinstance(item, dict):
            raise bad_request("Each batch request must be an object.", code="BadRequest")
        for field in ("id", "method", "url"):
            if not item.get(field):
                raise bad_request(f"Batch request is missing the '{field}' property.", code="BadRequest")
        item_id = str(item["id"])
        if item_id in ids:
            raise bad_request(f"Batch request id '{item_id}' is not unique.", code="BadRequest")
        ids.add(item_id)
        if str(item["url"]).startswith(("http://", "https://", "/v1.0/", "/beta/")):
            raise bad_request("Batch request urls must be relative to the version root.", code="BadRequest")
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        if "body" in item and "content-type" not in headers:
            raise bad_request("Content-Type header must be specified for a request with a body.", code="BadRequest")
    known = {str(i["id"]) for i in requests}
    for item in requests:
        for dependency in item.get("dependsOn") or []:
            if str(dependency) not in known:
                raise bad_request(f"dependsOn names an unknown request '{dependency}'.", code="BadRequest")
    return requests


async def batch(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("Unable to read JSON request payload.", code="BadRequest") from None
    items = _validate(body)
    version = "/beta" if request.path.startswith("/beta/") else "/v1.0"
    base = request.app[URLS]["http"] + version
    authorization = request.headers.get("Authorization", "")
    done: dict[str, asyncio.Future] = {str(i["id"]): asyncio.get_running_loop().create_future() for i in items}
    session = request.app[_SESSION]

    async def run(item: dict[str, Any]) -> dict[str, Any]:
        item_id = str(item["id"])
        for dependency in item.get("dependsOn") or []:
            status = await done[str(dependency)]
            if not 200 <= status < 300:
                result = {
                    "id": item_id,
                    "status": 424,
                    "headers": {"Content-Type": "application/json"},
                    "body": error_body("FailedDependency", "The dependent request failed."),
                }
                done[item_id].set_result(424)
                return result
        headers = {k: v for k, v in (item.get("headers") or {}).items()}
        headers["Authorization"] = authorization
        headers[BATCH_ITEM_HEADER] = "1"  # the client paid the network latency once, for the $batch itself
        data = json.dumps(item["body"]).encode() if "body" in item else None
        url = base + ("" if str(item["url"]).startswith("/") else "/") + str(item["url"])
        try:
            async with session.request(item["method"].upper(), url, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
                out_headers = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() in ("content-type", "retry-after", "location")
                }
        except aiohttp.ClientError:
            status, raw, out_headers = 503, json.dumps(error_body("ServiceUnavailable", "Dropped.")).encode(), {}
            out_headers["Retry-After"] = "1"
        result: dict[str, Any] = {"id": item_id, "status": status, "headers": out_headers}
        if raw:
            try:
                result["body"] = json.loads(raw)
            except ValueError:
                result["body"] = raw.decode(errors="replace")
        done[item_id].set_result(status)
        return result

    results = await asyncio.gather(*(run(i) for i in items))
    return web.json_response({"responses": list(results)})


async def _open_session(app: web.Application):
    app[_SESSION] = aiohttp.ClientSession()
    yield
    await app[_SESSION].close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_open_session)
    for version in VERSIONS:
        app.router.add_post(f"{version}/$batch", batch)
