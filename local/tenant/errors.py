"""Graph's JSON error envelope, as every emulated endpoint returns it.

Follows https://learn.microsoft.com/graph/errors : {"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web


def error_body(code: str, message: str, request: web.Request | None = None) -> dict:
    client_request_id = request.headers.get("client-request-id", "") if request is not None else ""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": client_request_id or str(uuid.uuid4()),
            },
        }
    }


def graph_error(
    status: int, code: str, message: str, request: web.Request | None = None, headers: dict | None = None
) -> web.Response:
    """A Graph error response: the status, the documented envelope, and any extra headers (Retry-After)."""
    return web.json_response(error_body(code, message, request), status=status, headers=headers)


class GraphError(Exception):
    """Raised by handlers and state methods; the server turns it into graph_error()."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(message: str = "Resource not found.", code: str = "Request_ResourceNotFound") -> GraphError:
    return GraphError(404, code, message)


def forbidden(message: str = "Insufficient privileges to complete the operation.") -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", message)


async def json_object(request: web.Request, allowed: set[str] | None = None) -> dict:
    """The request body as a JSON object, Graph's 400s otherwise; with `allowed`, unknown properties are 400 too."""
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("Unable to read JSON request payload.", code="BadRequest") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="BadRequest")
    if allowed is not None:
        unknown = sorted(set(body) - allowed - {"@odata.type"})
        if unknown:
            raise bad_request(f"Invalid property '{unknown[0]}'.", code="badRequest")
    return body
