"""The stage playbooks of the MFA-reset access package, run by the worker for one recorded callout.

Every fact that drives an action is re-read from Graph; the callout body only has to agree with it. Each
step is checkpointed, so a redelivered message continues after the last completed step, and EM is resumed
exactly once per stage instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from graph.directory import Directory
from graph.entitlement import AssignmentRequest, Entitlement
from graph.errors import GraphCallError, IncompleteDeletion
from graph.methods import ALL_DELETABLE, DeletionReport, Methods
from notify import Event, EventKind, Notifier
from store.pickups import PickupStore
from store.records import OPEN, Reset, ResetStore

from . import onboarding
from .guardrails import Guardrails, Verdict
from .payload import CalloutPayload
from .settings import Settings
from .sweep import REQUESTED_BY_SWEEP, removal_intent

log = logging.getLogger(__name__)

CREATED = "assignmentRequestCreated"
APPROVED = "assignmentRequestApproved"
GRANTED = "assignmentRequestGranted"
REMOVED = "assignmentRequestRemoved"
STAGES = (CREATED, APPROVED, GRANTED, REMOVED)
# Request states (accessPackageAssignmentRequest.state) after which EM calls no further stage; "gone": a 404.
ENDED_BEFORE_GRANT = {"denied", "canceled", "deliveryfailed", "gone"}
CLOSED = "closed"
# The request states in which each stage can legitimately be running.
EXPECTED_STATES = {
    CREATED: {"submitted", "pendingapproval"},
    # launch-and-continue: EM may have delivered by the time the worker reads the request
    APPROVED: {"submitted", "pendingapproval", "delivering", "delivered", "partiallydelivered"},
    GRANTED: {"delivering", "delivered", "partiallydelivered"},
}


class PermanentFailure(Exception):
    """Retrying will not help: the request is resumed with the failure, audited, and an alert raised."""


@dataclass(frozen=True)
class WorkItem:
    request_id: str
    stage: str
    stage_instance_id: str

    def step(self, name: str) -> str:
        return f"{self.stage}:{self.stage_instance_id}:{name}"


class Workflow:
    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        methods: Methods,
        entitlement: Entitlement,
        resets: ResetStore,
        pickups: PickupStore,
        notifier: Notifier,
    ):
        self.settings = settings
        self.directory = directory
        self.methods = methods
        self.entitlement = entitlement
        self.resets = resets
        self.pickups = pickups
        self.notifier = notifier
        self.guardrails = Guardrails(settings, directory, resets)

    # --- entry ----------------------------------------------------------------------------------------
    async def run(self, item: WorkItem, callout: CalloutPayload, wait_for_resume: bool) -> None:
        if item.stage not in STAGES:
            raise PermanentFailure(f"unknown stage {item.stage}")
        prefetch: dict[str, Any] = {}
        hint = callout.assignment.target.object_id if callout.assignment and callout.assignment.target else None
        if item.stage == GRANTED and hint:
            # The granted stage's reads go out together with the request re-read (one round trip); they are
            # used only once Graph has confirmed that the hinted target is the request's target.
            request, prefetch["snapshot"], prefetch["manager"] = await asyncio.gather(
                self.entitlement.request(item.request_id), self.methods.snapshot(hint), self.directory.manager(hint)
            )
            prefetch["target"] = hint
        else:
            request = await self.entitlement.request(item.request_id)
        if request is None:
            raise PermanentFailure(f"assignment request {item.request_id} does not exist in Graph")
        if not self._is_mfa_reset_package(request):
            await self._resume_once(
                item, "This access package is not configured for MFA reset; nothing was changed.", wait_for_resume
            )
            return
        self._check_agreement(item, callout, request)
        if item.stage == GRANTED:
            await self._granted(item, request, wait_for_resume, prefetch)
            return
        playbook = {CREATED: self._created, APPROVED: self._approved, REMOVED: self._removed}
        await playbook[item.stage](item, request, wait_for_resume)

    def _is_mfa_reset_package(self, request: AssignmentRequest) -> bool:
        """The MFA-reset packages and the new-hire onboarding packages run these playbooks."""
        configured = {p.lower() for p in [*self.settings.mfa_reset_package_ids, *self.settings.onboarding_package_ids]}
        return (request.access_package_id or "").lower() in configured

    def _is_onboarding(self, request: AssignmentRequest) -> bool:
        configured = {p.lower() for p in self.settings.onboarding_package_ids}
        return (request.access_package_id or "").lower() in configured

    async def _onboarding_verdict(self, request: AssignmentRequest, verdict: Verdict) -> Verdict:
        """Onboarding is for users without MFA: one who already has strong methods is denied (configurable)."""
        if not (verdict.allowed and self._is_onboarding(request) and self.settings.onboarding_deny_when_registered):
            return verdict
        methods = await self.methods.list(request.target_id or "")
        strong = onboarding.strong_methods(methods, ignore_phones=self.settings.onboarding_ignore_phones)
        if strong:
            name = verdict.target_name or request.target_name or "The user"
            return Verdict.deny(onboarding.denial(name, strong), verdict.target_name)
        return verdict

    def _check_agreement(self, item: WorkItem, callout: CalloutPayload, request: AssignmentRequest) -> None:
        """The callout must describe the request Graph knows; otherwise someone replayed or forged it."""
        mismatches = []
        hint_target = callout.assignment.target.object_id if callout.assignment and callout.assignment.target else None
        if hint_target and request.target_id and hint_target.lower() != request.target_id.lower():
            mismatches.append("target")
        hint_requestor = callout.requestor.object_id if callout.requestor else None
        if hint_requestor and request.requestor_id and hint_requestor.lower() != request.requestor_id.lower():
            mismatches.append("requestor")
        hint_package = callout.access_package.id if callout.access_package else None
        if hint_package and request.access_package_id and hint_package.lower() != request.access_package_id.lower():
            mismatches.append("access package")
        expected = EXPECTED_STATES.get(item.stage)
        if expected is not None and request.state.lower() not in expected:
            mismatches.append(f"state ({request.state})")
        if mismatches:
            raise PermanentFailure(f"the callout disagrees with Graph about the {', '.join(mismatches)}")

    # --- playbooks ------------------------------------------------------------------------------------
    async def _created(self, item: WorkItem, request: AssignmentRequest, wait: bool) -> None:
        if not await self.resets.step_done(item.request_id, item.step("decided")):
            await self._close_ended(request.target_id or "", request.id)
            verdict = await self._onboarding_verdict(
                request, await self.guardrails.check(request, onboarding=self._is_onboarding(request))
            )
            if verdict.allowed:
                opened = await self.resets.create(
                    Reset(
                        request_id=request.id,
                        target_id=request.target_id or "",
                        requestor_id=request.requestor_id or "",
                        access_package_id=request.access_package_id or "",
                    )
                )
                if opened is None:  # another request for the same user was decided at the same moment and won
                    name = verdict.target_name or request.target_name or "this user"
                    verdict = Verdict.deny(f"Another MFA reset for {name} is still open.", name)
            if verdict.allowed:
                await self.resets.audit(
                    request.id, "requested", actor=request.requestor_id or "", target=request.target_id
                )
            else:
                await self.resets.audit(request.id, "denied", actor="guardrails", detail=verdict.reason)
            await self.resets.mark_step(
                item.request_id,
                item.step("decided"),
                Allowed=verdict.allowed,
                Reason=verdict.reason,
                ManagerId=verdict.manager_id or "",
            )
        decision = await self.resets.step_done(item.request_id, item.step("decided")) or {}
        allowed, reason = bool(decision.get("Allowed")), decision.get("Reason", "")
        # Resume before notifying, here and in every stage: EM's callback is what the request waits on, while
        # message delivery may retry for a while.
        if allowed:
            await self._resume_once(item, "Checks passed: waiting for approval.", wait)
        else:
            await self._resume_once(item, f"Denied: {reason}", wait, denied=True)
        kind = EventKind.REQUESTED if allowed else EventKind.DENIED
        await self._notify_once(item, kind, request, reason, manager_id=decision.get("ManagerId") or None)

    async def _close_ended(self, target_id: str, request_id: str) -> None:
        """Close the user's open resets whose requests ended in EM before access was granted (an approver denied,
        the requester canceled, delivery failed, or the request is gone): EM sends no further callout for them, so
        without this they would hold the user's one open reset for ever."""
        others = [
            r for r in await self.resets.for_target(target_id) if r.get("State") == OPEN and r["RowKey"] != request_id
        ]
        for row in others:
            other = await self.resets.get(row["RowKey"])
            if other is None or other.state != OPEN or other.pickup_id:
                continue  # a granted reset has a pickup: the sweep and the removed stage close it
            found = await self.entitlement.request(other.request_id)
            state = found.state.lower() if found is not None else "gone"
            if state not in ENDED_BEFORE_GRANT:
                continue
            other.state = CLOSED
            other.detail = f"The request ended in Entitlement Management ({state}) before access was granted."
            await self.resets.save(other)
            await self.resets.audit(other.request_id, "closed", actor="worker", detail=other.detail)

    async def _approved(self, item: WorkItem, request: AssignmentRequest, wait: bool) -> None:
        await self._resume_once(item, "Approval noted; the reset runs when access is granted.", wait)
        await self._notify_once(item, EventKind.APPROVED, request, "Approved; the reset runs when access is granted.")

    async def _granted(self, item: WorkItem, request: AssignmentRequest, wait: bool, prefetch: dict[str, Any]) -> None:
        # Every storage read this stage needs goes out at once (the resume's own checkpoints included).
        reset, done, *resume_state = await asyncio.gather(
            self.resets.get(request.id),
            self.resets.step_done(request.id, item.step("reset")),
            self.resets.step_done(request.id, item.step("resumed")),
            self.resets.step_done(request.id, item.step("resume-attempted")),
        )
        if reset is None:
            raise PermanentFailure("no reset was recorded at the created stage; refusing to delete methods")
        target = request.target_id or reset.target_id
        usable = prefetch.get("target", "").lower() == target.lower()
        outcome: list[Awaitable[Any]] = []  # recording this try's outcome, done beside opening the pickup
        if not done and self._is_onboarding(request):  # a new hire: nothing to delete, no session to revoke
            outcome.append(self.resets.mark_step(request.id, item.step("reset"), Onboarding=True))
        elif not done:
            # One $batch revokes the sessions, deletes the methods (default last) and re-reads them.
            try:
                report = await self.methods.delete_all(
                    target,
                    self._method_types(),
                    snapshot=prefetch.get("snapshot") if usable else None,
                    revoke_sessions=True,
                )
            except IncompleteDeletion as exc:
                # Throttled halfway: keep what is gone for the summary, and let the redelivery finish the rest.
                reset.deleted_methods = _merged(reset.deleted_methods, [m.label for m in exc.report.deleted])
                await self.resets.save(reset)
                raise
            reset.deleted_methods = _merged(reset.deleted_methods, [m.label for m in report.deleted])
            reset.remaining_methods = [m.label for m in report.remaining]
            outcome.append(self._record_deletion(item, reset, report))
        manager = prefetch["manager"] if usable else await self.directory.manager(target)
        deliverer = manager.id if manager else reset.requestor_id
        summary = onboarding.SUMMARY if self._is_onboarding(request) else _summary(reset)
        pickup, *_ = await asyncio.gather(
            self.pickups.open_for_request(
                request.id,
                target,
                request.target_name or target,
                deliverer,
                timedelta(hours=self.settings.pickup_lifetime_hours),
                summary,
            ),
            *outcome,
        )
        link = f"{self.settings.pickup_base_url.rstrip('/')}/{pickup.id}"
        if reset.pickup_id != pickup.id:
            reset.pickup_id = pickup.id
            await asyncio.gather(
                self.resets.save(reset),
                self.resets.audit(request.id, "pickupOpened", actor="worker", deliverer=deliverer, pickup=pickup.id),
            )
        # EM before the messages: its callback is what the requester waits on, and delivery may retry for a while.
        detail = f"{summary} The manager can now pick up a Temporary Access Pass; it is shown once."
        await self._resume_once(item, detail, wait, known=(resume_state[0], resume_state[1]))
        await self._notify_once(
            item,
            EventKind.PICKUP_READY,
            request,
            summary,
            manager_id=deliverer,
            data={"pickupUrl": link, "pickupExpiresAt": pickup.expires_at.strftime("%Y-%m-%d %H:%M UTC")},
        )

    async def _record_deletion(self, item: WorkItem, reset: Reset, report: DeletionReport) -> None:
        await asyncio.gather(
            self.resets.save(reset),
            self.resets.audit(
                reset.request_id,
                "methodsDeleted",
                actor="worker",
                sessionsRevoked=report.revoked,
                deleted=reset.deleted_methods,
                remaining=reset.remaining_methods,
                failures=report.failures,
            ),
        )
        await self.resets.mark_step(reset.request_id, item.step("reset"))  # only once the outcome is saved

    async def _removed(self, item: WorkItem, request: AssignmentRequest, wait: bool) -> None:
        target = request.target_id
        if target and not await self.resets.step_done(request.id, item.step("tapDeleted")):
            report = await self.methods.delete_all(target, ("temporaryAccessPass",))
            await self.resets.mark_step(request.id, item.step("tapDeleted"))
            if report.deleted:
                await self.resets.audit(request.id, "passDeleted", actor="worker")
        # The removal is its own request (adminRemove, systemRemove on expiry): find the resets of this target.
        open_resets = [r["RowKey"] for r in await self.resets.for_target(target or "") if r.get("State") == "open"]
        for reset_request_id in {request.id, *open_resets}:
            pickup = await self.pickups.for_request(reset_request_id)
            if pickup is not None and pickup.state == "open" and await self.pickups.transition(pickup, "closed"):
                await self.resets.audit(reset_request_id, "pickupClosed", actor="worker", removal=request.id)
            reset = await self.resets.get(reset_request_id)
            if reset is not None and reset.state == "open":
                reset.state = "removed"
                await self.resets.save(reset)
        await self._resume_once(item, "Access removed; any unused pass was deleted.", wait)
        # A removal the sweep asked for (passkey registered, pickup expired) was announced by the sweep already;
        # the reset's own trail records that EM carried it out.
        ours = await self.resets.step_done(request.id, REQUESTED_BY_SWEEP)
        if ours is None and request.assignment_id:  # the sweep crashed between asking EM and noting the answer
            ours = await self.resets.step_done(removal_intent(request.assignment_id), REQUESTED_BY_SWEEP)
        if ours is None:
            await self._notify_once(item, EventKind.REMOVED, request, "Access removed; any unused pass was deleted.")
        elif await self.resets.claim(request.id, item.step("audited")):
            await self.resets.audit(
                ours["ResetRequestId"], "assignmentRemoved", actor="worker", removal=request.id, reason=ours["Reason"]
            )

    # --- shared steps ---------------------------------------------------------------------------------
    def _method_types(self) -> tuple[str, ...]:
        configured = [t.strip() for t in self.settings.reset_method_types if t.strip()]
        if not configured or "all" in configured:
            return ALL_DELETABLE
        return tuple(t for t in configured if t in ALL_DELETABLE)

    async def _notify_once(
        self,
        item: WorkItem,
        kind: EventKind,
        request: AssignmentRequest,
        detail: str,
        manager_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        # At least once: marked after sending, so a worker that dies in between sends it again on redelivery (a
        # repeated message beats a lost pickup link). Failed deliveries are retried and audited by the notifier.
        step = item.step(f"notify-{kind}")
        if await self.resets.step_done(item.request_id, step):
            return
        await self.notifier.notify(
            Event(
                kind=kind,
                request_id=request.id,
                target_id=request.target_id,
                target_name=request.target_name,
                requestor_id=request.requestor_id,
                manager_id=manager_id,
                detail=detail,
                data=data or {},
            )
        )
        await self.resets.mark_step(item.request_id, step)

    async def _resume_once(
        self, item: WorkItem, detail: str, wait: bool, *, denied: bool = False, known: tuple[Any, Any] | None = None
    ) -> None:
        """Resume EM for this stage instance exactly once (launch-and-continue stages need no resume).

        `known`: the "resumed" and "resume-attempted" checkpoints, when the caller read them already.
        """
        if not wait:
            return
        resumed, attempted = known or await asyncio.gather(
            self.resets.step_done(item.request_id, item.step("resumed")),
            self.resets.step_done(item.request_id, item.step("resume-attempted")),
        )
        if resumed:
            return
        await self.resets.mark_step(item.request_id, item.step("resume-attempted"))
        try:
            await self.entitlement.resume(item.request_id, item.stage, item.stage_instance_id, detail, denied=denied)
        except GraphCallError as exc:
            if not (attempted and 400 <= exc.status < 500 and exc.status != 429):
                raise
            # Our earlier attempt reached EM before we could record it; EM no longer waits for this instance.
            log.info("resume of %s already accepted earlier (%s)", item.request_id, exc.code)
        await asyncio.gather(
            self.resets.mark_step(item.request_id, item.step("resumed"), Detail=detail[:1000], Denied=denied),
            self.resets.audit(item.request_id, "resumed", actor="worker", detail=detail, stage=item.stage),
        )

    async def fail(self, item: WorkItem, reason: str, wait: bool) -> None:
        """Permanent failure: resume with the failure (denied where EM allows it), audit, alert."""
        await self.resets.audit(item.request_id, "failed", actor="worker", detail=reason, stage=item.stage)
        reset = await self.resets.get(item.request_id)
        if reset is not None and reset.state == "open":
            reset.state = "failed"
            reset.detail = reason
            await self.resets.save(reset)
        if await self.resets.claim(item.request_id, item.step("alert")):
            await self.notifier.notify(Event(kind=EventKind.FAILURE, request_id=item.request_id, detail=reason))
        try:
            await self._resume_once(item, f"MFA reset failed: {reason}", wait, denied=item.stage == CREATED)
        except GraphCallError as exc:
            log.error("could not resume %s after failure: %s", item.request_id, exc)


def _merged(before: list[str], now: list[str]) -> list[str]:
    """Labels deleted by earlier tries, then this one's (a redelivery only sees what was left)."""
    return before + [label for label in now if label not in before]


def _summary(reset: Reset) -> str:
    deleted = len(reset.deleted_methods)
    text = f"MFA reset: {deleted} method{'s' if deleted != 1 else ''} removed and sign-in sessions revoked."
    if reset.remaining_methods:
        text += f" Still registered: {', '.join(reset.remaining_methods)}."
    return text
