"""Teams Workflows webhook sink of the local tenant: records the cards posted to /webhooks/{name}; can fail on demand.

Documentation followed: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
(Workflows "When a Teams webhook request is received": {type: "message", attachments: [{contentType:
"application/vnd.microsoft.card.adaptive", content: {AdaptiveCard}}]} → 202). The query string (the flow URL's
api-version, sp, sv, sig) is accepted and ignored. Where the docs are silent the handler says "Docs silent".

Control (no auth, loopback only):
| GET/DELETE /_control/webhooks/{name}       | the payloads a webhook received, oldest first                           |
| PUT        /_control/webhooks/{name}/fail  | {count, status}: the next posts answer that status (429: Retry-After 1) |
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .appkeys import STATE
from .state import TenantState

CARD = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28 * 1024  # Teams limits a message to about 28 KB


def _sink(state: TenantState) -> dict[str, Any]:
    return state.extras.setdefault("webhooks", {"posts": {}, "fail": {}})


def _workflow_error(status: int, code: str, message: str) -> web.Response:
    # Workflows run on Logic Apps, whose request trigger answers errors as {"error": {"code", "message"}}.
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _card_payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return "The body must be {type: 'message', attachments: [...]}."
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty array."
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD:
            return f"Every attachment must have contentType '{CARD}'."
        content = attachment.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard" or not content.get("version"):
            return "Every attachment's content must be an Adaptive Card with type and version."
    return None


async def webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{name}: the Workflows trigger "When a Teams webhook request is received"."""
    state: TenantState = request.app[STATE]
    name = request.match_info["name"]
    failures = _sink(state)["fail"].get(name) or []
    if failures:
        status = failures.pop(0)
        headers = {"Retry-After": "1"} if status == 429 else None
        return web.json_response({"error": {"code": "Injected", "message": "Injected failure."}}, status=status,
                                 headers=headers)  # fmt: skip
    raw = await request.read()
    try:
        payload = json.loads(raw)
    except ValueError:
        return _workflow_error(400, "InvalidRequestContent", "The request content is not valid JSON.")
    problem = _card_payload_problem(payload)
    if problem:
        # Docs silent: the trigger's schema is the Teams card payload; a mismatch is refused, not posted.
        return _workflow_error(400, "TriggerInputSchemaMismatch", problem)
    if len(raw) > MAX_MESSAGE_BYTES:
        return _workflow_error(413, "MessageSizeTooBig", "Teams messages are limited to about 28 KB.")
    _sink(state)["posts"].setdefault(name, []).append(payload)
    return web.Response(status=202)


async def control_webhook(request: web.Request) -> web.Response:
    hooks = _sink(request.app[STATE])["posts"]
    if request.method == "DELETE":
        hooks.pop(request.match_info["name"], None)
        return web.Response(status=204)
    return web.json_response(hooks.get(request.match_info["name"], []))


async def control_webhook_fail(request: web.Request) -> web.Response:
    body = await request.json()
    status = body.get("status", 500)
    if not isinstance(status, int) or not 400 <= status <= 599:
        return web.json_response({"error": "status must be an HTTP error status"}, status=400)
    _sink(request.app[STATE])["fail"][request.match_info["name"]] = [status] * int(body.get("count", 1))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/webhooks/{name}", webhook)
    r.add_get("/_control/webhooks/{name}", control_webhook)
    r.add_delete("/_control/webhooks/{name}", control_webhook)
    r.add_put("/_control/webhooks/{name}/fail", control_webhook_fail)
