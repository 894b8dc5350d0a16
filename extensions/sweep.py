"""The completion sweep: finishes onboarding once a passkey appears, expires unrevealed pickups, deletes spent passes.

Each run walks the open and revealed pickups after a saved cursor, a bounded number per run and within a time
budget. Every action is checkpointed in the reset's steps (a message is marked after it is sent: at least once),
and a pickup leaves the working set only after its last step, so a run that stops anywhere (crash, timeout,
throttling) is finished by a later one and a second pass over the same state changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError

from graph.entitlement import Entitlement
from graph.errors import GraphCallError
from graph.passkeys import Credential, Passkeys, passkeys_since
from notify import Event, EventKind, Notifier
from store.pickups import Pickup, PickupStore
from store.records import OPEN, Reset, ResetStore
from store.sweep import SweepStore

from .settings import Settings

log = logging.getLogger(__name__)
COMPLETED = "completed"
EXPIRED = "expired"
LAPSED = "sweep:lapsed"  # the revealed pass ran out before a passkey: the reset is being closed
USED = "sweep:pass-used"  # when the sweep first saw our one-time pass used (SeenAt)
# How long after a one-time pass was used the user may still be registering a passkey in the session it opened.
ONE_TIME_GRACE = timedelta(hours=1)
REMOVABLE = {"delivered", "partiallydelivered"}  # assignment states EM can still remove
# Graph's createdDateTime may come in whole seconds and from another clock than ours: a passkey created this
# little before the pickup opened still counts (the reset had just deleted the user's methods at that point).
CLOCK_TOLERANCE = timedelta(seconds=5)
# The step the removed stage looks for to recognise a removal the sweep asked for (see workflow._removed).
REQUESTED_BY_SWEEP = "sweep:requestedBy"


def removal_intent(assignment_id: str) -> str:
    """Where the sweep notes, before asking EM, that it is about to remove this assignment: the removed stage
    finds it by assignment even when the sweep crashed before learning the removal request's id."""
    return f"assignment-{assignment_id}"


@dataclass
class SweepReport:
    visited: int = 0
    outcomes: Counter = field(default_factory=Counter)
    stopped: str = ""  # why the run ended before its batch did: "time", "throttled", "storage"
    wrapped: bool = False  # the run reached the end of the working set; the next starts from the beginning

    def line(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items())) or "nothing to do"
        return f"Sweep: visited {self.visited} ({counts}){' stopped: ' + self.stopped if self.stopped else ''}"


class Sweep:
    def __init__(
        self,
        settings: Settings,
        passkeys: Passkeys,
        entitlement: Entitlement,
        resets: ResetStore,
        pickups: PickupStore,
        store: SweepStore,
        notifier: Notifier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.settings = settings
        self.passkeys = passkeys
        self.entitlement = entitlement
        self.resets = resets
        self.pickups = pickups
        self.store = store
        self.notifier = notifier
        self.clock = clock

    async def run(self) -> SweepReport:
        report = SweepReport()
        deadline = time.monotonic() + self.settings.sweep_time_budget_seconds
        limit = self.settings.sweep_max_pickups
        batch = await self.store.active_after(await self.store.cursor(), limit)
        for pickup in batch:
            if time.monotonic() > deadline:
                report.stopped = "time"
                break
            try:
                outcome = await self.visit(pickup)
            except GraphCallError as exc:
                if exc.transient:
                    # Graph is throttling or failing: stop here (more calls make it worse); this pickup is first
                    # in line next run because the cursor stays before it.
                    log.warning("sweep stopped at pickup %s: %s", pickup.id, exc)
                    report.stopped = "throttled"
                    break
                log.error("sweep: pickup %s of request %s: %s", pickup.id, pickup.request_id, exc)
                outcome = "failed"
            except AzureError as exc:
                log.warning("sweep stopped at pickup %s: storage: %s", pickup.id, type(exc).__name__)
                report.stopped = "storage"
                break
            except Exception:
                # A defect with one pickup must not stall every run behind it: log it and move on.
                log.exception("sweep: pickup %s of request %s failed", pickup.id, pickup.request_id)
                outcome = "failed"
            report.visited += 1
            report.outcomes[outcome] += 1
            await self.store.save_cursor(pickup.id)
        else:
            if len(batch) < limit:  # the end of the working set: start over next time
                report.wrapped = True
                await self.store.save_cursor("")
        log.info(report.line())
        return report

    # --- one pickup -------------------------------------------------------------------------------------
    async def visit(self, pickup: Pickup) -> str:
        reset = await self.resets.get(pickup.request_id)
        if reset is None:
            return "skipped"
        if pickup.state == "open":
            if self.clock() < pickup.expires_at:
                return "waiting"
            return await self._expire(pickup, reset)
        seen, lapsed, used = await asyncio.gather(
            self.resets.step_done(reset.request_id, "sweep:passkey"),
            self.resets.step_done(reset.request_id, LAPSED),
            self.resets.step_done(reset.request_id, USED),
        )
        if lapsed is not None and seen is None:
            return await self._expire(pickup, reset, lapsed=True)  # an earlier run stopped halfway through
        if reset.state not in (OPEN, COMPLETED):
            # Removed or failed elsewhere (the removed stage already deleted any pass): leave the working set.
            await self.pickups.transition(pickup, "closed")
            return "closed"
        credentials: list[Credential] | None = None
        if seen is None:
            credentials = await self.passkeys.credentials(reset.target_id)
            since = pickup.created_at - CLOCK_TOLERANCE
            found = passkeys_since(credentials, since, self.settings.sweep_count_windows_hello)
            if not found:
                return await self._spent_passes(pickup, reset, credentials, used)
            first = min(found, key=lambda c: c.created or pickup.created_at)
            seen = {"MethodId": first.id, "Label": first.label, "RegisteredAt": first.created}
            await self.resets.mark_step(reset.request_id, "sweep:passkey", **seen)
        return await self._complete(pickup, reset, seen, credentials)

    async def _complete(
        self, pickup: Pickup, reset: Reset, seen: dict[str, Any], credentials: list[Credential] | None
    ) -> str:
        rid = reset.request_id
        label = str(seen.get("Label") or "passkey")
        # The pass first: with a passkey registered it only widens the way in.
        if not await self.resets.step_done(rid, "sweep:passDeleted"):
            credentials = credentials or await self.passkeys.credentials(reset.target_id)
            passes = [c for c in credentials if c.kind == "temporaryAccessPass"]
            for credential in passes:
                await self.passkeys.delete_pass(reset.target_id, credential.id)
            if passes:
                await self.resets.audit(rid, "passDeleted", actor="sweep", detail=f"{label} registered")
            await self.resets.mark_step(rid, "sweep:passDeleted", Count=len(passes))
        # Completed before the removal is asked for, so the removed stage that follows does not call it removed.
        if reset.state == OPEN:
            reset.state = COMPLETED
            reset.detail = f"Passkey registered: {label}"
            await self.resets.save(reset)
        why = f"Onboarding complete: {label} registered; leaving the onboarding group."
        removal = await self._request_removal(reset, why, COMPLETED)
        registered = seen.get("RegisteredAt")
        at = registered.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(registered, datetime) else str(registered or "")
        if not await self.resets.step_done(rid, "sweep:audited-completed"):
            await self.resets.audit(
                rid, COMPLETED, actor="sweep", detail=why, passkey=label, registeredAt=at, removalRequest=removal
            )
            await self.resets.mark_step(rid, "sweep:audited-completed")
        if not await self.resets.step_done(rid, "sweep:notify-completed"):  # at least once: marked after sending
            target = pickup.target_name or reset.target_id
            await self.notifier.notify(
                Event(
                    kind=EventKind.COMPLETED,
                    request_id=rid,
                    target_id=reset.target_id,
                    target_name=pickup.target_name,
                    requestor_id=reset.requestor_id,
                    manager_id=pickup.deliverer_id,
                    detail=f"{target} registered a passkey ({label}); the pass is deleted, onboarding access removed.",
                    data={"passkey": label, "registeredAt": at},
                )
            )
            await self.resets.mark_step(rid, "sweep:notify-completed")
        await self.pickups.transition(pickup, "closed")  # last: the pickup leaves the working set
        return COMPLETED

    async def _expire(self, pickup: Pickup, reset: Reset, *, lapsed: bool = False) -> str:
        """Close a reset that can no longer finish: its pickup was never revealed, or (`lapsed`) the revealed pass
        ran out before a passkey was registered. Either way the user needs a new request."""
        rid = reset.request_id
        hours = f"{self.settings.pickup_lifetime_hours:g}"
        who = pickup.target_name or reset.target_id
        if lapsed:
            why = "The Temporary Access Pass ran out before a passkey was registered; access removed."
            detail = f"The Temporary Access Pass for {who} was used up or expired without a passkey. {why}"
        else:
            why = f"The pickup was not revealed within {hours} hours; access removed."
            detail = f"The Temporary Access Pass for {who} was never picked up. {why}"
        if reset.state == OPEN:
            reset.state = EXPIRED
            reset.detail = why
            await self.resets.save(reset)
        removal = await self._request_removal(reset, why, EXPIRED)
        if not await self.resets.step_done(rid, "sweep:audited-expired"):
            event = "passLapsed" if lapsed else "pickupExpired"
            await self.resets.audit(rid, event, actor="sweep", detail=why, removalRequest=removal)
            await self.resets.mark_step(rid, "sweep:audited-expired")
        if not await self.resets.step_done(rid, "sweep:notify-expired"):  # at least once: marked after sending
            await self.notifier.notify(
                Event(
                    kind=EventKind.EXPIRED,
                    request_id=rid,
                    target_id=reset.target_id,
                    target_name=pickup.target_name,
                    requestor_id=reset.requestor_id,
                    manager_id=pickup.deliverer_id,
                    detail=detail,
                    data={"expiredAt": pickup.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "passLapsed": lapsed},
                )
            )
            await self.resets.mark_step(rid, "sweep:notify-expired")
        await self.pickups.transition(pickup, EXPIRED)
        return EXPIRED

    async def _spent_passes(
        self, pickup: Pickup, reset: Reset, credentials: list[Credential], used: dict[str, Any] | None = None
    ) -> str:
        """Delete passes we minted for this reset that expired or were used up; any other pass is left alone."""
        spent = [c for c in credentials if c.spent]
        usable = any(c.kind == "temporaryAccessPass" and not c.spent and c.usable for c in credentials)
        used_at = used.get("SeenAt") if used else None
        if not spent:
            # Our one-time pass was used (and deleted) a while ago and still no passkey: the session it opened is
            # over, so the reset cannot finish any more.
            if isinstance(used_at, datetime) and self.clock() - used_at > ONE_TIME_GRACE and not usable:
                await self.resets.mark_step(reset.request_id, LAPSED)
                return await self._expire(pickup, reset, lapsed=True)
            return "waiting"
        trail = await self.resets.audit_trail(reset.request_id)
        ours = {_data(row).get("methodId") for row in trail if row.get("Event") == "revealed"}
        if used is None and any(c.id in ours and c.usability.lower() == "onetimeused" for c in spent):
            await self.resets.mark_step(reset.request_id, USED, SeenAt=self.clock())
        # Our pass ran out by its lifetime (a used one-time pass gets ONE_TIME_GRACE above: the user may still be
        # registering in the session it opened) and no other pass can sign the user in: the reset cannot finish
        # any more. Noted before anything changes, so a run that stops halfway is finished by the next.
        lapsed = any(c.id in ours and c.usability.lower() == "expired" for c in spent)
        if lapsed and not usable:
            await self.resets.mark_step(reset.request_id, LAPSED)
        deleted = 0
        for credential in (c for c in spent if c.id in ours):
            if await self.passkeys.delete_pass(reset.target_id, credential.id):
                deleted += 1
                await self.resets.audit(
                    reset.request_id, "passDeleted", actor="sweep", detail=credential.usability, methodId=credential.id
                )
        if lapsed and not usable:
            return await self._expire(pickup, reset, lapsed=True)
        return "passDeleted" if deleted else "waiting"

    async def _request_removal(self, reset: Reset, why: str, reason: str) -> str:
        """Ask EM once to remove the reset's assignment (adminRemove); the id of that request, or "" when there was
        nothing left to remove."""
        rid = reset.request_id
        done = await self.resets.step_done(rid, "sweep:removal")
        if done is not None:
            return str(done.get("RemovalRequestId") or "")
        request = await self.entitlement.request(rid)
        assignment_id = request.assignment_id if request else None
        state = await self.entitlement.assignment_state(assignment_id) if assignment_id else None
        removal_id = ""
        if assignment_id and (state or "").lower() in REMOVABLE:
            attempted = await self.resets.step_done(rid, "sweep:removal-attempted")
            await asyncio.gather(
                self.resets.mark_step(
                    removal_intent(assignment_id), REQUESTED_BY_SWEEP, ResetRequestId=rid, Reason=reason
                ),
                self.resets.mark_step(rid, "sweep:removal-attempted"),
            )
            try:
                created = await self.entitlement.remove_assignment(assignment_id, why)
                removal_id = str((created or {}).get("id") or "")
            except GraphCallError as exc:
                if exc.transient:
                    raise
                # EM refuses a second removal: ours went through before we could record it, or someone else's did.
                again = await self.entitlement.assignment_state(assignment_id)
                if not attempted and (again or "").lower() in REMOVABLE:
                    raise
                log.info("removal of assignment %s already under way (%s)", assignment_id, exc.code)
        if removal_id:
            await self.resets.mark_step(removal_id, REQUESTED_BY_SWEEP, ResetRequestId=rid, Reason=reason)
            await self.resets.audit(rid, "removalRequested", actor="sweep", detail=why, removalRequest=removal_id)
        facts = {"AssignmentId": assignment_id or "", "AssignmentState": state or "", "RemovalRequestId": removal_id}
        await self.resets.mark_step(rid, "sweep:removal", **facts)
        return removal_id


def _data(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row.get("Data") or "{}")
    except ValueError:
        return {}
