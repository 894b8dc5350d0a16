"""Azure Communication Services Email, as azure-communication-email's EmailClient talks to it.

Documentation followed:
- Email - Send: https://learn.microsoft.com/rest/api/communication/dataplane/email/send (POST /emails:send,
  202 with Operation-Location and operation-id headers; body {id, status}; Operation-Id header for idempotency)
- Email - Get Send Result: GET /emails/operations/{operationId} → {id, status: Running|Succeeded|Failed, error}
- HMAC authentication: https://learn.microsoft.com/rest/api/communication/authentication (string to sign
  "VERB\\n{path and query}\\n{x-ms-date};{host};{x-ms-content-sha256}", HMAC-SHA256 with the access key) or an
  Entra token for https://communication.azure.com
- Service limits: https://learn.microsoft.com/azure/communication-services/concepts/service-limits (custom
  domain default 30 emails per minute and 100 per hour; 429 with Retry-After over them)
Served on HTTP and HTTPS; azure-core clients need the HTTPS URL and the tenant CA.

Control: GET/DELETE /_control/acs/messages, PUT /_control/acs/limits {perMinute, perHour},
POST /_control/acs/fail-next {count, status}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .auth import signing_key, v1_issuer, v2_issuer
from .state import TenantState

MAX_RECIPIENTS = 50


@dataclass
class Mailbox:
    messages: list[dict[str, Any]] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent_at: list[datetime] = field(default_factory=list)
    per_minute: int = 30
    per_hour: int = 100
    fail_next: list[int] = field(default_factory=list)


def mailbox(state: TenantState) -> Mailbox:
    if "acs" not in state.extras:
        state.extras["acs"] = Mailbox()
    return state.extras["acs"]


def _config(state: TenantState) -> dict[str, Any]:
    return state.fixture.get("acs") or {}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _authenticated(request: web.Request, body: bytes) -> bool:
    state: TenantState = request.app[STATE]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            jwt.decode(
                header[7:],
                signing_key()[0].public_key(),
                algorithms=["RS256"],
                audience=["https://communication.azure.com", "https://communication.azure.com/"],
                issuer=[v1_issuer(state.tenant_id), v2_issuer(state.tenant_id)],
            )
        except jwt.PyJWTError:
            return False
        return True
    if not header.startswith("HMAC-SHA256 "):
        return False
    key = _config(state).get("accessKey")
    if not key:
        return False
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if request.headers.get("x-ms-content-sha256") != digest:
        return False
    path = request.path_qs
    string_to_sign = f"{request.method}\n{path}\n{request.headers.get('x-ms-date', '')};{request.host};{digest}"
    expected = base64.b64encode(
        hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    presented = header.split("Signature=", 1)[-1]
    return hmac.compare_digest(expected, presented)


def _validate(message: Any, state: TenantState) -> str | None:
    if not isinstance(message, dict):
        return "The request body must be a JSON object."
    sender = message.get("senderAddress")
    if not isinstance(sender, str) or "@" not in sender:
        return "senderAddress is required."
    domains = [d.lower() for d in _config(state).get("senderDomains", [])]
    if sender.split("@", 1)[1].lower() not in domains:
        return f"The sender domain {sender.split('@', 1)[1]} is not linked to this resource."
    recipients = message.get("recipients") or {}
    to = recipients.get("to") or []
    if not to:
        return "recipients.to must contain at least one recipient."
    everyone = to + (recipients.get("cc") or []) + (recipients.get("bcc") or [])
    if len(everyone) > MAX_RECIPIENTS:
        return f"At most {MAX_RECIPIENTS} recipients are allowed."
    if any(not isinstance(r, dict) or "@" not in str(r.get("address", "")) for r in everyone):
        return "Every recipient needs a valid address."
    content = message.get("content") or {}
    if not content.get("subject"):
        return "content.subject is required."
    if not (content.get("plainText") or content.get("html")):
        return "content needs plainText or html."
    return None


async def send(request: web.Request) -> web.Response:
    state: TenantState = request.app[STATE]
    box = mailbox(state)
    body = await request.read()
    if not _authenticated(request, body):
        return _error(401, "Unauthorized", "Authentication failed.")
    if box.fail_next:
        status = box.fail_next.pop(0)
        headers = {"Retry-After": "1"} if status == 429 else None
        return _error(status, "TooManyRequests" if status == 429 else "InternalError", "Injected failure.", headers)
    now = state.now()
    box.sent_at = [t for t in box.sent_at if now - t < timedelta(hours=1)]
    in_minute = [t for t in box.sent_at if now - t < timedelta(minutes=1)]
    if len(in_minute) >= box.per_minute or len(box.sent_at) >= box.per_hour:
        oldest = in_minute[0] if len(in_minute) >= box.per_minute else box.sent_at[0]
        window = timedelta(minutes=1) if len(in_minute) >= box.per_minute else timedelta(hours=1)
        retry = max(1, int((oldest + window - now).total_seconds()) + 1)
        return _error(429, "TooManyRequests", "Email send quota exceeded.", {"Retry-After": str(retry)})
    try:
        message = json.loads(body or b"null")
    except ValueError:
        return _error(400, "BadRequest", "The body is not valid JSON.")
    problem = _validate(message, state)
    if problem:
        return _error(400, "BadRequest", problem)
    operation_id = request.headers.get("Operation-Id") or str(uuid.uuid4())
    if operation_id not in box.operations:
        box.sent_at.append(now)
        box.operations[operation_id] = {"id": operation_id, "status": "Succeeded", "error": None}
        box.messages.append(
            {
                "operationId": operation_id,
                "senderAddress": message["senderAddress"],
                "to": [r["address"] for r in message["recipients"]["to"]],
                "cc": [r["address"] for r in message["recipients"].get("cc") or []],
                "subject": message["content"]["subject"],
                "plainText": message["content"].get("plainText"),
                "html": message["content"].get("html"),
                "at": now.isoformat(),
            }
        )
    location = (
        f"{request.url.origin()}/emails/operations/{operation_id}?api-version={request.query.get('api-version', '')}"
    )
    return web.json_response(
        {"id": operation_id, "status": "Running"},
        status=202,
        headers={"Operation-Location": location, "operation-id": operation_id, "Retry-After": "0"},
    )


async def operation(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    if not _authenticated(request, await request.read()):
        return _error(401, "Unauthorized", "Authentication failed.")
    found = box.operations.get(request.match_info["id"])
    if found is None:
        return _error(404, "NotFound", "No such operation.")
    return web.json_response(found)


async def control_messages(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    if request.method == "DELETE":
        box.messages.clear()
        return web.Response(status=204)
    return web.json_response(box.messages)


async def control_limits(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    body = await request.json()
    box.per_minute = int(body.get("perMinute", box.per_minute))
    box.per_hour = int(body.get("perHour", box.per_hour))
    box.sent_at.clear()
    return web.json_response({"perMinute": box.per_minute, "perHour": box.per_hour})


async def control_fail_next(request: web.Request) -> web.Response:
    body = await request.json()
    mailbox(request.app[STATE]).fail_next.extend([int(body.get("status", 500))] * int(body.get("count", 1)))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post("/emails:send", send)
    app.router.add_get("/emails/operations/{id}", operation)
    app.router.add_get("/_control/acs/messages", control_messages)
    app.router.add_delete("/_control/acs/messages", control_messages)
    app.router.add_put("/_control/acs/limits", control_limits)
    app.router.add_post("/_control/acs/fail-next", control_fail_next)
