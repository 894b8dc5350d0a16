"""POST /api/callout: Entitlement Management's callout, recorded once per stage instance and queued; 202 fast.

The caller's bearer token is verified first; anything else about the request is looked at only after that.
No Graph call on this path: EM waits at most 2 s for the answer.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
from pydantic import ValidationError

from store.callouts import CalloutKey

from .container import get_container
from .errors import CallerRejected, SigningKeysUnavailable
from .http_util import error_response, json_response
from .payload import parse_callout

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _validation_message(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()]
    return "; ".join(parts)


@bp.route(route="callout", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def callout(req: func.HttpRequest) -> func.HttpResponse:
    container = get_container()
    try:
        caller = await container.verifier.verify(req.headers.get("Authorization"))
    except CallerRejected as exc:
        log.warning("callout refused: %s", exc)
        return error_response(401, "unauthorized", str(exc))
    except SigningKeysUnavailable as exc:
        log.error("callout not verified: %s", exc)
        return error_response(503, "signingKeysUnavailable", "the tenant's signing keys cannot be read; retry")
    raw = req.get_body()
    if len(raw) > container.settings.callout_max_body_bytes:
        return error_response(
            413, "payloadTooLarge", f"the body exceeds {container.settings.callout_max_body_bytes} bytes"
        )
    try:
        body = json.loads(raw or b"null")
        payload = parse_callout(body)
    except json.JSONDecodeError as exc:
        return error_response(400, "invalidJson", f"the body is not JSON: {exc.msg}")
    except ValidationError as exc:
        return error_response(400, "invalidCallout", _validation_message(exc))
    except ValueError as exc:
        return error_response(400, "invalidCallout", str(exc))
    if payload.is_connection_test:
        log.info("custom extension connection test answered")
        return json_response({"status": "connectionTestSucceeded"}, 202)
    missing = [
        name
        for name, value in (
            ("AccessPackageAssignmentRequestId", payload.access_package_assignment_request_id),
            ("CustomExtensionStageInstanceId", payload.custom_extension_stage_instance_id),
        )
        if not value
    ]
    if missing:
        return error_response(400, "invalidCallout", f"missing {', '.join(missing)}")
    key = CalloutKey(
        payload.access_package_assignment_request_id, payload.stage, payload.custom_extension_stage_instance_id
    )
    new = await container.callouts.accept(key, payload.model_dump(mode="json", by_alias=True, exclude_none=True))
    log.info(
        "callout %s request=%s stage=%s caller=%s",
        "accepted" if new else "repeated",
        key.request_id,
        key.stage,
        caller.app_id or caller.object_id,
    )
    return json_response({"status": "accepted" if new else "duplicate"}, 202)
