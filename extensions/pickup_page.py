"""GET /api/pickup/{id} and POST /api/pickup/{id}/reveal: the manager's view-once Temporary Access Pass.

Anonymous at the Functions level: App Service Authentication (Easy Auth) signs the viewer in and vouches for
them in headers (pickup_rules). The pass is minted only when the authorised deliverer presses Reveal, after
the pickup has been marked revealed with an optimistic-concurrency update (two clicks never mint twice). It
goes into the response body and nowhere else: not into logs, tables, queues, notifications or telemetry.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlparse

import azure.functions as func

from graph.directory import Directory
from graph.entitlement import Entitlement
from graph.errors import GraphCallError
from graph.tap import TemporaryAccessPasses
from notify import Event, EventKind
from store.pickups import Pickup

from . import pickup_rules as rules
from . import pickup_view as view
from .container import Container, get_container
from .pickup_rules import Refusal, Viewer

bp = func.Blueprint()
NOTIFY_HEAD_START_S = 2.0
_background: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones to running tasks


def _in_background(work) -> asyncio.Task:
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("a reveal notification failed: %s", type(task.exception()).__name__)


log = logging.getLogger(__name__)
PICKUP_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class _Stop(Exception):  # control flow: carries the page to answer with
    def __init__(self, response: func.HttpResponse):
        self.response = response


async def _audit_refusal(container: Container, pickup: Pickup, viewer: Viewer, refusal: Refusal, event: str) -> None:
    await container.resets.audit(
        pickup.request_id, event, actor=viewer.id, detail=refusal.code, viewer=viewer.name, status=refusal.status
    )


async def _admit(container: Container, req: func.HttpRequest) -> tuple[Viewer, Pickup]:
    """The signed-in viewer and their pickup, if they may see it now; otherwise _Stop with the page."""
    settings = container.settings
    if not settings.easy_auth_enabled:
        raise _Stop(view.refusal_page(Refusal(401, "easyAuthOff")))
    viewer = rules.viewer_from_headers(req.headers, settings.easy_auth_enabled)
    if viewer is None:
        back = quote(urlparse(req.url).path, safe="/")
        raise _Stop(
            view.refusal_page(Refusal(401, "signIn"), sign_in=f"/.auth/login/aad?post_login_redirect_uri={back}")
        )
    pickup_id = req.route_params.get("id", "")
    pickup = await container.pickups.get(pickup_id) if PICKUP_ID.fullmatch(pickup_id) else None
    if pickup is None:
        raise _Stop(view.refusal_page(Refusal(404, "notFound"), viewer))
    target = pickup.target_name or pickup.target_id
    try:
        refusal = await rules.check_viewer_now(pickup, viewer, Directory(container.graph), settings)
    except GraphCallError as exc:
        log.warning("pickup %s: directory check failed: %s", pickup.id, exc)
        raise _Stop(view.refusal_page(Refusal(503, "graphUnavailable"), viewer, target)) from None
    if refusal is None:
        refusal = rules.check_open(pickup, datetime.now(UTC), settings.pickup_lifetime_hours)
    if refusal is not None:
        log.info("pickup %s refused to %s: %s", pickup.id, viewer.id, refusal.code)
        await _audit_refusal(container, pickup, viewer, refusal, "pickupRefused")
        raise _Stop(view.refusal_page(refusal, viewer, target))
    return viewer, pickup


async def _still_delivered(container: Container, pickup: Pickup, viewer: Viewer) -> None:
    target = pickup.target_name or pickup.target_id
    try:
        refusal = await rules.check_assignment_now(pickup, Entitlement(container.graph))
    except GraphCallError as exc:
        log.warning("pickup %s: request re-read failed: %s", pickup.id, exc)
        raise _Stop(view.refusal_page(Refusal(503, "graphUnavailable"), viewer, target)) from None
    if refusal is not None:
        await _audit_refusal(container, pickup, viewer, refusal, "pickupRefused")
        raise _Stop(view.refusal_page(refusal, viewer, target))


@bp.route(route="pickup/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def pickup_page(req: func.HttpRequest) -> func.HttpResponse:
    container = get_container()
    try:
        viewer, pickup = await _admit(container, req)
        if pickup.state == "revealed":
            return view.revealed_page(pickup, viewer)
        await _still_delivered(container, pickup, viewer)
        if not pickup.csrf_nonce:  # opened before pickups carried a nonce: give it one now
            await container.pickups.transition(pickup, "open", CsrfNonce=secrets.token_urlsafe(24))
            pickup = await container.pickups.get(pickup.id) or pickup
    except _Stop as stop:
        return stop.response
    action = urlparse(req.url).path.rstrip("/") + "/reveal"
    return view.open_page(pickup, viewer, action)


def _form_nonce(req: func.HttpRequest) -> str:
    try:
        fields = parse_qs(req.get_body().decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return ""
    return (fields.get("nonce") or [""])[0]


@bp.route(route="pickup/{id}/reveal", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def reveal(req: func.HttpRequest) -> func.HttpResponse:
    container = get_container()
    try:
        viewer, pickup = await _admit(container, req)
        target = pickup.target_name or pickup.target_id
        nonce = _form_nonce(req)
        cross_site = req.headers.get("Sec-Fetch-Site", "").lower() == "cross-site"  # browsers say so; belt and braces
        if cross_site or not pickup.csrf_nonce or not hmac.compare_digest(nonce.encode(), pickup.csrf_nonce.encode()):
            refusal = Refusal(403, "csrf")
            await _audit_refusal(container, pickup, viewer, refusal, "revealRefused")
            return view.refusal_page(refusal, viewer, target)
        if pickup.state == "revealed":
            return view.revealed_page(pickup, viewer, just_now=True)
        await _still_delivered(container, pickup, viewer)
        return await _reveal(container, pickup, viewer)
    except _Stop as stop:
        return stop.response


async def _policy_plan(container: Container, pickup: Pickup, taps: TemporaryAccessPasses):
    policy = await taps.policy()
    plan = rules.plan_pass(policy, container.settings.tap_lifetime_minutes)
    if isinstance(plan, rules.PassPlan) and rules.targets_need_groups(policy):
        groups = (await Directory(container.graph).memberships(pickup.target_id)).group_ids
        if not rules.in_policy_targets(policy, groups):
            plan = Refusal(409, "notInTargets")
    return policy, plan


async def _reveal(container: Container, pickup: Pickup, viewer: Viewer) -> func.HttpResponse:
    target = pickup.target_name or pickup.target_id
    taps = TemporaryAccessPasses(container.graph)
    try:
        policy, plan = await _policy_plan(container, pickup, taps)
    except GraphCallError as exc:
        log.warning("pickup %s: TAP policy read failed: %s", pickup.id, exc)
        return view.refusal_page(Refusal(503, "graphUnavailable"), viewer, target)
    if isinstance(plan, Refusal):
        await _audit_refusal(container, pickup, viewer, plan, "revealRefused")
        return view.refusal_page(plan, viewer, target)
    now = datetime.now(UTC)
    claimed = await container.pickups.transition(
        pickup,
        "revealed",
        RevealedBy=viewer.id,
        RevealedByName=viewer.name,
        RevealedAt=now,
        PassExpiresAt=now + timedelta(minutes=plan.lifetime_minutes),
    )
    if not claimed:  # someone else (another click) changed the pickup first: never mint a second pass
        current = await container.pickups.get(pickup.id)
        if current is not None and current.state == "revealed":
            return view.revealed_page(current, viewer, just_now=True)
        return view.refusal_page(Refusal(410, "closed"), viewer, target)
    try:
        minted = await taps.mint(pickup.target_id, plan.lifetime_minutes, plan.usable_once)
    except Exception as exc:
        refusal = (
            rules.classify_mint_error(exc, policy)
            if isinstance(exc, GraphCallError)
            else Refusal(503, "mintFailed", {"code": type(exc).__name__})
        )
        log.warning("pickup %s: minting failed (%s): %s", pickup.id, refusal.code, type(exc).__name__)
        await _reopen(container, pickup.id)
        await _audit_refusal(container, pickup, viewer, refusal, "revealFailed")
        return view.refusal_page(refusal, viewer, target)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = f"revealed by {viewer.name} ({viewer.id}) at {at}"
    facts = {
        "revealedBy": viewer.id,
        "revealedByName": viewer.name,
        "revealedAt": at,
        "expiresAt": minted.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "usableOnce": minted.usable_once,
    }
    event = Event(
        kind=EventKind.REVEALED,
        request_id=pickup.request_id,
        target_id=pickup.target_id,
        target_name=pickup.target_name,
        manager_id=viewer.id,
        detail=f"The Temporary Access Pass for {target} was {detail}.",
        data=facts,
    )
    # The manager waits on this page with the pass already minted: a slow or failing channel (the notifier
    # retries for a while) must not hold it back, so delivery gets a short head start and then goes on alone.
    delivery = _in_background(container.notifier.notify(event))
    audited = await asyncio.gather(
        container.resets.audit(
            pickup.request_id, "revealed", actor=viewer.id, detail=detail, methodId=minted.method_id, **facts
        ),
        asyncio.wait({delivery}, timeout=NOTIFY_HEAD_START_S),
        return_exceptions=True,
    )
    if isinstance(audited[0], BaseException):
        # The pass exists and the pickup says who revealed it: show it rather than lose it.
        log.error("pickup %s: recording the reveal failed: %s", pickup.id, type(audited[0]).__name__)
    log.info("pickup %s revealed by %s", pickup.id, viewer.id)
    return view.pass_page(pickup, viewer, minted)


async def _reopen(container: Container, pickup_id: str) -> None:
    """Minting failed: nothing was shown, so the pickup opens again for a retry once the cause is fixed."""
    current = await container.pickups.get(pickup_id)
    if current is not None and current.state == "revealed":
        await container.pickups.transition(current, "open", RevealedBy="", RevealedByName="")
