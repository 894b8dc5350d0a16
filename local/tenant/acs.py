"""ACS Email data plane of the local tenant (send, operation status, HMAC and Entra auth, quotas) and its control API.

Documentation followed:
- Email - Send, api-version 2023-03-31: https://learn.microsoft.com/rest/api/communication/dataplane/email/send
  and its OpenAPI spec (azure-rest-api-specs, specification/communication/data-plane/Email/stable/2023-03-31):
  POST {endpoint}/emails:send → 202, headers Operation-Location and retry-after, body EmailSendResult
  {id, status: "Running"}; optional Operation-Id header (uuid) names the operation; body EmailMessage with
  senderAddress, content{subject, plainText?, html?}, recipients{to, cc?, bcc?} required, headers, attachments
  {name, contentType, contentInBase64}, replyTo, userEngagementTrackingDisabled; errors carry
  {"error": {"code", "message"}} and an x-ms-error-code header equal to the code.
- Email - Get Send Result: https://learn.microsoft.com/rest/api/communication/dataplane/email/get-send-result
  GET {endpoint}/emails/operations/{operationId} → 200 {id, status: NotStarted|Running|Succeeded|Failed|Canceled,
  error}; retry-after only while the status is not terminal (spec examples: Succeeded, Failed with
  {"code": "EmailDropped", ...}).
- HMAC: https://learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial and
  https://learn.microsoft.com/rest/api/communication/authentication : Authorization "HMAC-SHA256
  SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64 HMAC-SHA256 of
  'VERB\\n{path and query}\\n{x-ms-date};{host};{x-ms-content-sha256}' with the base64-decoded access key>",
  x-ms-content-sha256 = base64(SHA-256(body)). Or an Entra bearer token for https://communication.azure.com.
- Limits: https://learn.microsoft.com/azure/communication-services/concepts/service-limits#email and
  https://learn.microsoft.com/azure/communication-services/concepts/email/sdk-features#api-throttling-and-timeouts
  (30 emails per minute and 100 per hour by default; over them 429 with Retry-After; 50 recipients per email).

Where the documentation is silent (error codes other than the envelope, the clock skew allowed for x-ms-date)
each handler says what we chose. Served on HTTP and HTTPS; azure-core clients need tenant.https_url and the CA.

Control (no auth, loopback only):
| GET    /_control/acs/messages   | every accepted message, oldest first                                        |
| DELETE /_control/acs/messages   | forget messages, operations, repeatability ids and the quota windows        |
| GET/PUT /_control/acs/limits    | {perMinute, perHour, retryAfterSeconds (poll hint), pendingPolls}           |
| POST   /_control/acs/fail-next  | {count, status: 429|500|503|"Failed", retryAfter?}: the next sends fail     |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import jwt
from aiohttp import web

from .appkeys import STATE
from .auth import signing_key, v1_issuer, v2_issuer
from .state import TenantState

RESOURCE = "https://communication.azure.com"
# Versions azure-communication-email 1.x sends (its ApiVersion enum) plus the earlier public preview.
API_VERSIONS = ("2021-10-01-preview", "2023-01-15-preview", "2023-03-31", "2024-07-01-preview", "2025-09-01")
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
MAX_RECIPIENTS = 50
# The ACS pages do not say how far x-ms-date may drift; App Configuration's identical HMAC scheme allows 15 min.
CLOCK_SKEW = timedelta(minutes=15)
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DROPPED = {"code": "EmailDropped", "message": "Email was dropped after several attempts to deliver."}
Handler = Callable[[web.Request], Awaitable[web.Response]]


class AcsError(Exception):
    """An ACS error response: status, the {"error": {"code", "message"}} body and extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def acs_error_response(exc: AcsError) -> web.Response:
    headers = {"x-ms-error-code": exc.code, **exc.headers}
    return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status, headers=headers)


def acs_route(handler: Handler) -> Handler:
    """Turn AcsError into ACS's error envelope (not Graph's, which the server's middleware would write)."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except AcsError as exc:
            return acs_error_response(exc)

    return wrapped


def bad_request(message: str) -> AcsError:
    # The spec documents only the envelope; "BadRequest" is the generic code ACS data-plane services use.
    return AcsError(400, "BadRequest", message)


def denied(message: str = "Denied by the resource provider.") -> AcsError:
    # Observed from ACS for HMAC failures: 401 {"error": {"code": "Denied", "message": ...}}.
    return AcsError(401, "Denied", message)


@dataclass
class Limits:
    per_minute: int = 30
    per_hour: int = 100
    retry_after_s: int = 1  # the poll hint on 202 and Running answers; 0 leaves the header out
    pending_polls: int = 0  # GETs that still answer Running before the terminal status

    def as_json(self) -> dict[str, int]:
        return {
            "perMinute": self.per_minute,
            "perHour": self.per_hour,
            "retryAfterSeconds": self.retry_after_s,
            "pendingPolls": self.pending_polls,
        }


@dataclass
class Mailbox:
    """The resource's bookkeeping: accepted messages, operations, repeatability ids, quota window, faults."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeatability: dict[str, str] = field(default_factory=dict)  # client-supplied id → operation id
    sent_at: list[datetime] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    fail_next: list[tuple[int | str, int]] = field(default_factory=list)  # (status or "Failed", retry-after)


def mailbox(state: TenantState) -> Mailbox:
    box = state.extras.get("acs")
    if not isinstance(box, Mailbox):
        box = state.extras["acs"] = Mailbox()
    return box


def config(state: TenantState) -> dict[str, Any]:
    return state.fixture.get("acs") or {}


# --- authentication ---------------------------------------------------------------------------------------


def authenticate(request: web.Request, body: bytes) -> dict[str, Any]:
    """Who is calling: {"auth": "hmac"} or {"auth": "entra", "appid": ...}; AcsError 401 otherwise."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return _entra(request, header[7:])
    if header.startswith("HMAC-SHA256 "):
        _hmac(request, header[len("HMAC-SHA256 ") :], body)
        return {"auth": "hmac"}
    raise denied()


def _entra(request: web.Request, token: str) -> dict[str, Any]:
    state: TenantState = request.app[STATE]
    resource = str(config(state).get("resource") or RESOURCE).rstrip("/")
    try:
        claims = jwt.decode(
            token,
            signing_key()[0].public_key(),
            algorithms=["RS256"],
            audience=[resource, resource + "/"],
            issuer=[v1_issuer(state.tenant_id), v2_issuer(state.tenant_id)],
            options={"require": ["exp", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise AcsError(401, "InvalidAuthenticationToken", f"The access token is invalid: {exc}") from None
    return {"auth": "entra", "appid": claims.get("appid") or claims.get("azp")}


def _hmac(request: web.Request, credentials: str, body: bytes) -> None:
    """Recompute the signature exactly as ACS does; any difference is a 401."""
    parts = dict(part.split("=", 1) for part in credentials.split("&") if "=" in part)
    if parts.get("SignedHeaders", "").lower() != SIGNED_HEADERS or not parts.get("Signature"):
        raise denied(f"The Authorization header must sign exactly '{SIGNED_HEADERS}'.")
    date = request.headers.get("x-ms-date") or request.headers.get("Date")
    if not date:
        raise denied("The x-ms-date header is required.")
    try:
        sent = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise denied("The x-ms-date header is not an RFC 1123 date.") from None
    # Real time, not the tenant clock: the signing client uses its wall clock and tests may move the tenant's.
    if sent.tzinfo is None or abs(datetime.now(UTC) - sent) > CLOCK_SKEW:
        raise denied("The x-ms-date header is too far from the current time.")
    claimed = request.headers.get("x-ms-content-sha256", "")
    if claimed != base64.b64encode(hashlib.sha256(body).digest()).decode():
        raise denied("Request 'x-ms-content-sha256' differs from generated content hash.")
    key = config(request.app[STATE]).get("accessKey", "")
    # raw_path is the path and query exactly as sent; the signed hash is the header's, checked above.
    to_sign = f"{request.method.upper()}\n{request.raw_path}\n{date};{request.headers.get('Host', '')};{claimed}"
    expected = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise denied()


def _api_version(request: web.Request) -> str:
    version = request.query.get("api-version")
    if not version:
        raise bad_request("The api-version query parameter is required.")
    if version not in API_VERSIONS:
        # Docs silent on the code; ARM-style services answer an unknown version with 400.
        raise AcsError(400, "UnsupportedApiVersion", f"The api-version '{version}' is not supported.")
    return version


# --- validation -------------------------------------------------------------------------------------------


def _addresses(value: Any, where: str, *, required: bool = False) -> list[dict[str, Any]]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise bad_request(f"{where} must be a non-empty array of email addresses." if required else f"{where}: array")
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise bad_request(f"Every entry of {where} needs an 'address'.")
        if not ADDRESS.match(entry["address"]):
            raise bad_request(f"Invalid email address '{entry['address']}' in {where}.")
        if "displayName" in entry and not isinstance(entry["displayName"], str | None):
            raise bad_request(f"displayName in {where} must be a string.")
    return value


def _content(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("content is required.")
    if not isinstance(value.get("subject"), str) or not value["subject"].strip():
        raise bad_request("content.subject is required.")
    for part in ("plainText", "html"):
        if value.get(part) is not None and not isinstance(value[part], str):
            raise bad_request(f"content.{part} must be a string.")
    if not (value.get("plainText") or value.get("html")):
        raise bad_request("content needs plainText or html.")
    return value


def _extras_valid(message: dict[str, Any]) -> None:
    headers = message.get("headers")
    if headers is not None and (not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())):
        raise bad_request("headers must be an object of string values.")
    attachments = message.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list):
            raise bad_request("attachments must be an array.")
        for item in attachments:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) and item[k] for k in ("name", "contentType", "contentInBase64")
            ):
                raise bad_request("Every attachment needs name, contentType and contentInBase64.")
            try:
                base64.b64decode(item["contentInBase64"], validate=True)
            except (binascii.Error, ValueError):
                raise bad_request(f"Attachment '{item['name']}' is not valid base64.") from None
    _addresses(message.get("replyTo"), "replyTo")
    tracking = message.get("userEngagementTrackingDisabled")
    if tracking is not None and not isinstance(tracking, bool):
        raise bad_request("userEngagementTrackingDisabled must be a boolean.")


def validate(message: Any, state: TenantState) -> None:
    """EmailMessage as the spec requires it; a sender outside the linked domains is ACS's DomainNotLinked."""
    if not isinstance(message, dict):
        raise bad_request("The request body must be an EmailMessage object.")
    sender = message.get("senderAddress")
    if not isinstance(sender, str) or not ADDRESS.match(sender):
        raise bad_request("senderAddress is required and must be an email address.")
    recipients = message.get("recipients")
    if not isinstance(recipients, dict):
        raise bad_request("recipients is required.")
    everyone = _addresses(recipients.get("to"), "recipients.to", required=True)
    everyone = everyone + _addresses(recipients.get("cc"), "recipients.cc")
    everyone = everyone + _addresses(recipients.get("bcc"), "recipients.bcc")
    if len(everyone) > MAX_RECIPIENTS:
        raise bad_request(f"The total number of recipients ({len(everyone)}) exceeds the limit of {MAX_RECIPIENTS}.")
    _content(message.get("content"))
    _extras_valid(message)
    domain = sender.rsplit("@", 1)[1].lower()
    if domain not in {d.lower() for d in config(state).get("senderDomains", [])}:
        # Not in the reference; what ACS answers when the MailFrom domain is not linked to the resource.
        raise AcsError(404, "DomainNotLinked", "The specified sender domain has not been linked.")


# --- quota ------------------------------------------------------------------------------------------------


def check_quota(box: Mailbox, now: datetime) -> None:
    """Sliding windows per resource; the 429's Retry-After is when the oldest send in the full window expires."""
    box.sent_at = [t for t in box.sent_at if now - t < timedelta(hours=1)]
    windows = ((timedelta(minutes=1), box.limits.per_minute), (timedelta(hours=1), box.limits.per_hour))
    waits = []
    for window, limit in windows:
        inside = [t for t in box.sent_at if now - t < window]
        if len(inside) >= limit:
            oldest = inside[-limit] if limit else now
            waits.append(max(1, math.ceil((oldest + window - now).total_seconds())))
    if waits:
        seconds = max(waits)
        raise AcsError(
            429,
            "TooManyRequests",
            f"The email send quota of this resource is exhausted. Try again in {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )


# --- routes -----------------------------------------------------------------------------------------------


def _client_operation_id(request: web.Request) -> str | None:
    """Operation-Id (2023-03-31+) or repeatability-request-id (the preview's idempotency header)."""
    value = request.headers.get("Operation-Id") or request.headers.get("repeatability-request-id")
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise bad_request("Operation-Id must be a GUID.") from None


def _accepted(request: web.Request, operation: dict[str, Any], version: str, retry_after: int) -> web.Response:
    base = f"{request.scheme}://{request.headers.get('Host', request.host)}"
    location = f"{base}/emails/operations/{operation['id']}?api-version={version}"
    headers = {"Operation-Location": location, "operation-id": operation["id"]}
    if retry_after:
        headers["retry-after"] = str(retry_after)
    return web.json_response({"id": operation["id"], "status": "Running"}, status=202, headers=headers)


def _record(box: Mailbox, message: dict[str, Any], operation: dict[str, Any], who: dict, now: datetime) -> None:
    recipients = message["recipients"]
    content = message["content"]
    box.messages.append(
        {
            "operationId": operation["id"],
            "senderAddress": message["senderAddress"],
            "recipients": {k: [r["address"] for r in recipients.get(k) or []] for k in ("to", "cc", "bcc")},
            "to": [r["address"] for r in recipients["to"]],
            "subject": content["subject"],
            "plainText": content.get("plainText"),
            "html": content.get("html"),
            "headers": message.get("headers") or {},
            "replyTo": [r["address"] for r in message.get("replyTo") or []],
            "attachments": [a["name"] for a in message.get("attachments") or []],
            "status": operation["final"]["status"],
            "time": now.isoformat(),
            "auth": who["auth"],
            "appId": who.get("appid"),
        }
    )


def _injected(box: Mailbox) -> str | None:
    """Apply a queued failure: raise it, or return "Failed" when the send is to be accepted and then fail."""
    if not box.fail_next:
        return None
    status, retry_after = box.fail_next.pop(0)
    if status == "Failed":
        return "Failed"
    code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(int(status), "InternalServerError")
    headers = {"Retry-After": str(retry_after)} if int(status) in (429, 503) else None
    raise AcsError(int(status), code, "Injected failure (control API).", headers)


@acs_route
async def send(request: web.Request) -> web.Response:
    """POST /emails:send (Email - Send)."""
    state: TenantState = request.app[STATE]
    box = mailbox(state)
    body = await request.read()
    who = authenticate(request, body)
    version = _api_version(request)
    try:
        message = json.loads(body or b"null")
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None
    validate(message, state)
    client_id = _client_operation_id(request)
    if client_id is not None and client_id in box.repeatability:
        # The same Operation-Id again is a retry of the same send: same operation, no second message.
        return _accepted(request, box.operations[box.repeatability[client_id]], version, box.limits.retry_after_s)
    outcome = _injected(box)
    now = state.now()
    check_quota(box, now)
    operation_id = client_id or str(uuid.uuid4())
    final: dict[str, Any] = {"id": operation_id, "status": "Succeeded", "error": None}
    if outcome == "Failed":
        final = {"id": operation_id, "status": "Failed", "error": dict(DROPPED)}
    operation = {"id": operation_id, "final": final, "pending": box.limits.pending_polls}
    box.operations[operation_id] = operation
    if client_id is not None:
        box.repeatability[client_id] = operation_id
    box.sent_at.append(now)
    _record(box, message, operation, who, now)
    return _accepted(request, operation, version, box.limits.retry_after_s)


@acs_route
async def get_operation(request: web.Request) -> web.Response:
    """GET /emails/operations/{id} (Email - Get Send Result)."""
    box = mailbox(request.app[STATE])
    authenticate(request, await request.read())
    _api_version(request)
    operation = box.operations.get(request.match_info["id"])
    if operation is None:
        raise AcsError(404, "NotFound", f"Operation '{request.match_info['id']}' was not found.")
    if operation["pending"] > 0:
        operation["pending"] -= 1
        headers = {"retry-after": str(box.limits.retry_after_s)} if box.limits.retry_after_s else None
        return web.json_response({"id": operation["id"], "status": "Running", "error": None}, headers=headers)
    # The spec's success example omits error; the service sends "error": null, which clients read the same.
    return web.json_response(operation["final"])


# --- control ----------------------------------------------------------------------------------------------


async def control_messages(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    if request.method == "DELETE":
        box.messages.clear()
        box.operations.clear()
        box.repeatability.clear()
        box.sent_at.clear()
        return web.Response(status=204)
    return web.json_response(box.messages)


async def control_limits(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    if request.method == "PUT":
        body = await request.json()
        fields = {
            "perMinute": "per_minute",
            "perHour": "per_hour",
            "retryAfterSeconds": "retry_after_s",
            "pendingPolls": "pending_polls",
        }
        for key, attribute in fields.items():
            if key in body:
                value = body[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    return web.json_response({"error": f"{key} must be a non-negative integer"}, status=400)
                setattr(box.limits, attribute, value)
    return web.json_response(box.limits.as_json())


async def control_fail_next(request: web.Request) -> web.Response:
    box = mailbox(request.app[STATE])
    body = await request.json()
    status = body.get("status", 500)
    if status != "Failed" and not (isinstance(status, int) and 400 <= status <= 599):
        return web.json_response({"error": 'status must be an HTTP error status or "Failed"'}, status=400)
    count = int(body.get("count", 1))
    box.fail_next.extend([(status, int(body.get("retryAfter", 1)))] * count)
    return web.json_response({"pending": len(box.fail_next)})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/emails:send", send)
    r.add_get("/emails/operations/{id}", get_operation)
    r.add_get("/_control/acs/messages", control_messages)
    r.add_delete("/_control/acs/messages", control_messages)
    r.add_get("/_control/acs/limits", control_limits)
    r.add_put("/_control/acs/limits", control_limits)
    r.add_post("/_control/acs/fail-next", control_fail_next)
