"""The phone functions: a timer (PHONE_SYNC_SCHEDULE) and POST /api/phones/sync with a JSON list of users.

The HTTP function accepts only a verified Entra bearer token (RS256 from the tenant's keys, iss, aud =
PHONE_SYNC_AUDIENCE, tid, lifetime) whose appid/azp or oid is in PHONE_SYNC_ALLOWED_CALLERS: the same
CallerVerifier as the callout, with its own audience and allow-list. No shared header secret. Body:
`["id or UPN", ...]` or `{"users": [...], "mode": "add"|"authoritative", "dryRun": bool}`.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from extensions.caller_token import CallerVerifier, SigningKeys
from extensions.container import get_container
from extensions.errors import CallerRejected, SigningKeysUnavailable
from extensions.http_util import error_response, json_response
from extensions.settings import Settings

from .service import run_phone_sync

bp = func.Blueprint()
log = logging.getLogger("phones")
_verifier: CallerVerifier | None = None


def phone_verifier(settings: Settings, keys: SigningKeys) -> CallerVerifier | None:
    """The callout's verifier with the phone endpoint's audience and callers; None when they are not set."""
    if not settings.phone_sync_audience or not settings.phone_sync_allowed_callers or not settings.tenant_id:
        return None
    scoped = settings.model_copy(
        update={
            "callout_audience": settings.phone_sync_audience,
            "callout_allowed_callers": settings.phone_sync_allowed_callers,
        }
    )
    return CallerVerifier(scoped, keys)


def parse_body(raw: bytes, limit: int) -> tuple[list[str], str | None, bool]:
    """(users, mode, dry run) from the request body; ValueError with a readable message otherwise."""
    try:
        body = json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc.msg}") from None
    mode, dry_run = None, False
    if isinstance(body, dict):
        mode = body.get("mode")
        dry_run = body.get("dryRun", False)
        body = body.get("users")
        if mode is not None and mode not in ("add", "authoritative"):
            raise ValueError("mode must be add or authoritative")
        if not isinstance(dry_run, bool):
            raise ValueError("dryRun must be true or false")
    if not isinstance(body, list) or not body or not all(isinstance(u, str) and u.strip() for u in body):
        raise ValueError('send a non-empty JSON list of user ids or UPNs (or {"users": [...]})')
    if len(body) > limit:
        raise ValueError(f"at most {limit} users per request (PHONE_SYNC_MAX_USERS_PER_REQUEST)")
    return [u.strip() for u in body], mode, dry_run


@bp.route(route="phones/sync", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def phones_sync(req: func.HttpRequest) -> func.HttpResponse:
    global _verifier
    container = get_container()
    settings = container.settings
    if _verifier is None:
        _verifier = phone_verifier(settings, SigningKeys(settings, container.http))
    if _verifier is None:
        return error_response(
            503, "notConfigured", "set PHONE_SYNC_AUDIENCE and PHONE_SYNC_ALLOWED_CALLERS to enable this endpoint"
        )
    try:
        caller = await _verifier.verify(req.headers.get("Authorization"))
    except CallerRejected as exc:
        log.warning("phone sync refused: %s", exc)
        return error_response(401, "unauthorized", str(exc))
    except SigningKeysUnavailable:
        return error_response(503, "signingKeysUnavailable", "the tenant's signing keys cannot be read; retry")
    try:
        users, mode, dry_run = parse_body(req.get_body(), settings.phone_sync_max_users_per_request)
    except ValueError as exc:
        return error_response(400, "invalidRequest", str(exc))
    log.info("phone sync of %d users by %s", len(users), caller.app_id or caller.object_id)
    summary = await run_phone_sync(
        settings, container.graph, container.tables, kind="http", users=users, mode=mode, dry_run=dry_run
    )
    return json_response({**summary.as_json(), "stats": summary.stats_line()})


@bp.timer_trigger(schedule="%PHONE_SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def phones_timer(timer: func.TimerRequest) -> None:
    container = get_container()
    summary = await run_phone_sync(container.settings, container.graph, container.tables, kind="timer")
    log.info("phone sync timer: %s", summary.stats_line())


def reset_verifier() -> None:
    """Forget the cached verifier (tests change settings between apps)."""
    global _verifier
    _verifier = None
