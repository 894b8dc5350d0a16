"""The Entitlement Management engine of the local tenant: request lifecycle, approvals, delivery, removal,
custom-extension stages with their callout instances, resume, timeouts and expiry.

Documentation followed:
- Request types and states: https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequest
- Stages, launch and wait vs launch and continue, "resume ... whose requestStatus is WaitingForCallback", a wait
  that gets no resume in time is a failure, deny only at "request is created" / "request is approved":
  https://learn.microsoft.com/entra/id-governance/entitlement-management-logic-apps-integration
- Resume body and 204: https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-resume
- Callback data (state Denied/Canceled): https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequestcallbackdata
- Callout instance statuses: https://learn.microsoft.com/graph/api/resources/customextensioncalloutinstance
- Approval stages and approvers: https://learn.microsoft.com/graph/api/resources/accesspackageassignmentapprovalsettings
- Removal through adminRemove: https://learn.microsoft.com/graph/api/entitlementmanagement-post-assignmentrequests
Where these are silent (the state a failed request ends in, error bodies of resume) the choice is commented.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from . import em_callouts as callouts
from .em_shapes import iso_duration, stamp
from .errors import GraphError, bad_request, not_found
from .state import TenantState

log = logging.getLogger("local.tenant.em")

CREATED = "assignmentRequestCreated"
APPROVED = "assignmentRequestApproved"
GRANTED = "assignmentRequestGranted"
REMOVED = "assignmentRequestRemoved"
RESUMABLE = (CREATED, APPROVED, GRANTED, REMOVED)
CALLBACK_DATA = "microsoft.graph.accessPackageAssignmentRequestCallbackData"
STAGE_TYPE = "microsoft.graph.accessPackageCustomExtensionStage."
WAITING = "WaitingForCallback"


class Engine:
    """One per tenant, in state.extras["em"]; every method runs on the tenant's event loop."""

    def __init__(self, state: TenantState):
        self.state = state
        em = state.entitlement
        self.packages = {p["id"]: p for p in em.get("accessPackages", [])}
        self.catalogs = {c["id"]: c for c in em.get("catalogs", [])}
        self.extensions = {e["id"]: e for e in em.get("customExtensions", [])}
        self.requests: dict[str, dict[str, Any]] = {r["id"]: r for r in em.get("assignmentRequests", [])}
        self.assignments: dict[str, dict[str, Any]] = {a["id"]: a for a in em.get("assignments", [])}
        self.sent: list[dict[str, Any]] = []  # every callout attempt, oldest first
        self.relay_app_id: str | None = None  # sign callouts as this identity instead of EM's app
        self.tasks: set[asyncio.Task] = set()

    # --- lookups ----------------------------------------------------------------------------------------
    def package(self, package_id: str) -> dict[str, Any]:
        if package_id not in self.packages:
            raise not_found(f"Access package '{package_id}' was not found.", code="ResourceNotFound")
        return self.packages[package_id]

    def request(self, request_id: str) -> dict[str, Any]:
        if request_id not in self.requests:
            raise not_found(f"Access package assignment request '{request_id}' was not found.", "ResourceNotFound")
        return self.requests[request_id]

    def assignment(self, assignment_id: str) -> dict[str, Any]:
        if assignment_id not in self.assignments:
            raise not_found(f"Access package assignment '{assignment_id}' was not found.", "ResourceNotFound")
        return self.assignments[assignment_id]

    def policy(self, item: dict[str, Any]) -> dict[str, Any]:
        package = self.package(item["_packageId"])
        return next(p for p in package["assignmentPolicies"] if p["id"] == item["_policyId"])

    def spawn(self, coro: Coroutine) -> None:
        """Run after the current call returns, as EM processes requests in the background."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _new_request(self, request_type: str, assignment: dict, requestor_id: str | None, justification: str, answers):
        now = self.state.now()
        request = {
            "id": str(uuid.uuid4()),
            "requestType": request_type,
            "state": "submitted",
            "status": "Accepted",
            "createdDateTime": stamp(now),
            "completedDateTime": None,
            "justification": justification or None,
            "answers": answers or [],
            "schedule": {"startDateTime": stamp(now), "recurrence": None, "expiration": {"type": "notSpecified"}},
            "customExtensionCalloutInstances": [],
            "_requestorId": requestor_id,
            "_targetId": assignment["_targetId"],
            "_packageId": assignment["_packageId"],
            "_policyId": assignment["_policyId"],
            "_assignmentId": assignment["id"],
            "_approvalStage": 0,
            "_stageStartedAt": now,
            "_approvals": [],
        }
        self.requests[request["id"]] = request
        return request

    # --- add: created → approvals → approved → delivered → granted ----------------------------------------
    def submit(
        self,
        requestor_id: str,
        target_id: str,
        package_id: str,
        request_type: str | None = None,
        justification: str = "",
        answers: list | None = None,
        policy_id: str | None = None,
    ) -> dict[str, Any]:
        kind = request_type or ("userAdd" if requestor_id == target_id else "onBehalfAdd")
        if kind != "adminAdd":  # an admin request may come from an application's service principal
            self.state.user(requestor_id)
        target = self.state.user(target_id)
        package = self.package(package_id)
        policies = package["assignmentPolicies"]
        policy = next((p for p in policies if p["id"] == policy_id), None) if policy_id else policies[0]
        if policy is None:
            raise bad_request(f"Policy '{policy_id}' does not belong to access package '{package_id}'.")
        if policy.get("allowedTargetScope") == "allMemberUsers" and target.get("userType", "Member") != "Member":
            raise bad_request("The target is not in the scope of users the policy allows (allMemberUsers).")
        assignment = {
            "id": str(uuid.uuid4()),
            "state": "delivering",
            "status": "PendingApproval",
            "expiredDateTime": None,
            "schedule": {"startDateTime": stamp(self.state.now()), "recurrence": None, "expiration": None},
            "customExtensionCalloutInstances": [],
            "_targetId": target_id,
            "_packageId": package_id,
            "_policyId": policy["id"],
        }
        self.assignments[assignment["id"]] = assignment
        request = self._new_request(kind, assignment, requestor_id, justification, answers)
        self.spawn(self.run_stage(request, CREATED))
        return request

    async def run_stage(self, request: dict[str, Any], stage: str) -> None:
        """Call the stage's custom extension if the policy has one; go on unless it waits for a resume."""
        setting = next(
            (s for s in self.policy(request).get("customExtensionStageSettings") or [] if s.get("stage") == stage),
            None,
        )
        extension = self.extensions.get(((setting or {}).get("customExtension") or {}).get("id", ""))
        if extension is None:
            await self.advance(request, stage)
            return
        waits = callouts.waits_for_callback(extension)
        instance = await self.call_out(request, stage, extension)
        if instance["status"] == "calloutFailed":
            if waits:
                # A launch-and-wait stage that cannot reach its extension fails the request (docs: "considered
                # a failure"; the resulting state is undocumented, we use deliveryFailed).
                self.fail(request, "CustomExtensionCalloutFailed")
                return
            await self.advance(request, stage)  # launch and continue: EM goes on regardless
            return
        if waits:
            instance["status"] = "waitingForCallback"
            instance["_deadline"] = self.state.now() + iso_duration(callouts.callback_duration(extension))
            request["_statusBeforeWait"] = request["status"]
            request["status"] = WAITING  # the resume doc: requestStatus is WaitingForCallback
            return
        await self.advance(request, stage)

    async def advance(self, request: dict[str, Any], stage: str) -> None:
        """What EM does once a stage is done."""
        if request["state"] in ("denied", "canceled", "deliveryFailed"):
            return
        if stage == CREATED:
            approval = self.policy(request).get("requestApprovalSettings") or {}
            needs_approval = approval.get("isApprovalRequiredForAdd") and approval.get("stages")
            if needs_approval and request["requestType"] != "adminAdd":  # admin direct assignments skip approval
                request.update(state="pendingApproval", status="PendingApproval", _stageStartedAt=self.state.now())
                return
            request.update(state="delivering", status="Approved")
            await self.run_stage(request, APPROVED)
        elif stage == APPROVED:
            await self.deliver(request)

    async def deliver(self, request: dict[str, Any]) -> None:
        request.update(state="delivering", status="Delivering")
        assignment = self.assignments[request["_assignmentId"]]
        group_id = self.package(request["_packageId"]).get("resourceGroupId")
        if group_id:
            members = self.state.group(group_id)["members"]
            if request["_targetId"] not in members:
                members.append(request["_targetId"])
        now = self.state.now()
        assignment.update(state="delivered", status="Delivered")
        ends = self._expiry(request, now)
        if ends is not None:
            assignment["schedule"]["expiration"] = {"type": "afterDateTime", "endDateTime": stamp(ends)}
            assignment["_expiresAt"] = ends
        request.update(state="delivered", status="Delivered", completedDateTime=stamp(now))
        await self.run_stage(request, GRANTED)

    def _expiry(self, request: dict[str, Any], now: datetime) -> datetime | None:
        expiration = self.policy(request).get("expiration") or {}
        if expiration.get("type") == "afterDuration" and expiration.get("duration"):
            return now + iso_duration(expiration["duration"])
        if expiration.get("type") == "afterDateTime" and expiration.get("endDateTime"):
            return datetime.fromisoformat(expiration["endDateTime"].replace("Z", "+00:00"))
        return None

    # --- approvals ----------------------------------------------------------------------------------------
    def _approval_stage(self, request: dict[str, Any], approver_id: str) -> tuple[list, int]:
        if request["state"] != "pendingApproval":
            raise bad_request(f"The request is {request['state']}, not pendingApproval.")
        stages = self.policy(request)["requestApprovalSettings"]["stages"]
        index = request["_approvalStage"]
        if not self.may_approve(request, stages[index], approver_id):
            raise GraphError(403, "Forbidden", f"'{approver_id}' is not an approver of approval stage {index + 1}.")
        return stages, index

    def approve(self, request_id: str, approver_id: str, justification: str = "") -> dict[str, Any]:
        request = self.request(request_id)
        stages, index = self._approval_stage(request, approver_id)
        self._record(request, index, approver_id, "Approve", justification)
        request["_approvalStage"] = index + 1
        request["_stageStartedAt"] = self.state.now()
        if index + 1 >= len(stages):
            request.update(state="delivering", status="Approved")
            self.spawn(self.run_stage(request, APPROVED))
        return request

    def deny(self, request_id: str, approver_id: str, justification: str = "") -> dict[str, Any]:
        request = self.request(request_id)
        _, index = self._approval_stage(request, approver_id)
        self._record(request, index, approver_id, "Deny", justification)
        self.end(request, "denied", "Denied")
        return request

    def _record(self, request: dict, index: int, approver_id: str, decision: str, justification: str) -> None:
        request["_approvals"].append(
            {
                "stage": index + 1,
                "approverId": approver_id,
                "decision": decision,
                "justification": justification,
                "at": stamp(self.state.now()),
            }
        )

    def may_approve(self, request: dict[str, Any], stage: dict[str, Any], approver_id: str) -> bool:
        for approver in stage.get("primaryApprovers", []):
            kind = approver.get("@odata.type", "")
            # requestorManager: the target's manager, the approver this product's package relies on (on-behalf
            # requests come from that manager; for self-requests target and requestor are the same person).
            if kind.endswith("requestorManager"):
                if self.state.users.get(request["_targetId"], {}).get("managerId") == approver_id:
                    return True
            elif kind.endswith("groupMembers"):
                if approver_id in self.state.group(approver["groupId"])["members"]:
                    return True
            elif kind.endswith("singleUser") and approver.get("userId") == approver_id:
                return True
        return False

    # --- endings ------------------------------------------------------------------------------------------
    def end(self, request: dict[str, Any], state: str, status: str) -> None:
        request.update(state=state, status=status, completedDateTime=stamp(self.state.now()))
        request.pop("_statusBeforeWait", None)
        assignment = self.assignments.get(request["_assignmentId"])
        if assignment is not None and assignment["state"] == "delivering":
            assignment.update(state="deliveryFailed" if state == "deliveryFailed" else "expired", status=status)

    def fail(self, request: dict[str, Any], status: str) -> None:
        if request["state"] == "delivered":
            # Access already granted (granted/removed stages): EM records the failure, the access stays as it is.
            request["status"] = status
            return
        self.end(request, "deliveryFailed", status)

    # --- removal ------------------------------------------------------------------------------------------
    def remove(
        self, assignment_id: str, request_type: str = "adminRemove", justification: str = "", requestor_id=None
    ) -> dict[str, Any]:
        assignment = self.assignment(assignment_id)
        if assignment["state"] != "delivered" or assignment.get("_removing"):
            raise bad_request(f"The assignment is {assignment['state']} and cannot be removed.")
        assignment["_removing"] = True
        removal = self._new_request(request_type, assignment, requestor_id, justification, [])
        self.spawn(self._process_removal(removal, assignment))
        return removal

    async def _process_removal(self, removal: dict[str, Any], assignment: dict[str, Any]) -> None:
        removal.update(state="delivering", status="Delivering")
        group_id = self.package(assignment["_packageId"]).get("resourceGroupId")
        if group_id:
            members = self.state.group(group_id)["members"]
            if assignment["_targetId"] in members:
                members.remove(assignment["_targetId"])
        now = self.state.now()
        assignment.update(state="expired", status="Expired", expiredDateTime=stamp(now))
        removal.update(state="delivered", status="Delivered", completedDateTime=stamp(now))
        await self.run_stage(removal, REMOVED)

    # --- time -----------------------------------------------------------------------------------------------
    def tick(self) -> dict[str, int]:
        """Evaluate callback timeouts, approval deadlines and assignment expiry against the tenant clock."""
        now = self.state.now()
        counts = {"timedOut": 0, "autoDenied": 0, "expired": 0}
        for request in list(self.requests.values()):
            for instance in request["customExtensionCalloutInstances"]:
                counts["timedOut"] += self._time_out(request, instance, now)
            if request["state"] == "pendingApproval":
                stages = self.policy(request)["requestApprovalSettings"]["stages"]
                limit = stages[request["_approvalStage"]].get("durationBeforeAutomaticDenial")
                if limit and now >= request["_stageStartedAt"] + iso_duration(limit):
                    self.end(request, "denied", "Denied")
                    counts["autoDenied"] += 1
        for assignment in list(self.assignments.values()):
            due = assignment.get("_expiresAt")
            if assignment["state"] == "delivered" and due and now >= due and not assignment.get("_removing"):
                self.remove(assignment["id"], "systemRemove", "The assignment expired.")
                counts["expired"] += 1
        return counts

    def _time_out(self, request: dict[str, Any], instance: dict[str, Any], now: datetime) -> int:
        if instance["status"] != "waitingForCallback" or now < instance["_deadline"]:
            return 0
        instance["status"] = "callbackTimedOut"
        self.fail(request, "CustomExtensionCallbackTimedOut")  # docs: a wait without resume is a failure
        return 1

    # --- callouts ---------------------------------------------------------------------------------------
    async def call_out(self, request: dict[str, Any], stage: str, extension: dict[str, Any]) -> dict[str, Any]:
        instance: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "customExtensionId": extension["id"],
            "detail": None,
            "externalCorrelationId": None,
            "status": "calloutSent",
            "_stage": stage,
            "_attempts": 0,
            "_lastHttpStatus": None,
        }
        request["customExtensionCalloutInstances"].append(instance)
        package = self.package(request["_packageId"])
        instance["_sentBody"] = callouts.callout_body(
            self.state,
            request=request,
            assignment=self.assignments[request["_assignmentId"]],
            package=package,
            catalog=self.catalogs.get(package.get("catalogId"), {}),
            policy=self.policy(request),
            stage=stage,
            instance_id=instance["id"],
            extension=extension,
        )
        ok = await callouts.post(self.state, extension, instance["_sentBody"], instance, self.sent, self.relay_app_id)
        if not ok:
            instance["status"] = "calloutFailed"
        return instance

    def register_extension(self, body: Any) -> dict[str, Any]:
        extension = callouts.validate_extension(body)
        self.extensions[extension["id"]] = extension
        catalog = self.catalogs.get(extension.get("catalogId"), {})
        probe = {"_attempts": 0, "_lastHttpStatus": None}
        self.spawn(
            callouts.post(
                self.state, extension, callouts.connection_test_body(catalog), probe, self.sent, self.relay_app_id
            )
        )
        return extension

    # --- resume -----------------------------------------------------------------------------------------
    def resume(self, request_id: str, payload: Any) -> None:
        """POST .../assignmentRequests/{id}/resume. Every refusal is a 400 that changes nothing: the docs name no
        error for a wrong instance id, a request that no longer waits, or a late resume."""
        request = self.request(request_id)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise bad_request("The body needs 'data' (accessPackageAssignmentRequestCallbackData).")
        data = payload["data"]
        if str(data.get("@odata.type", "")).lstrip("#").lower() != CALLBACK_DATA.lower():
            raise bad_request(f"data.@odata.type must be {CALLBACK_DATA}.")
        # Stage names compare case-insensitively: the documented deny example sends "AssignmentRequestCreated".
        stage = next((s for s in RESUMABLE if s.lower() == str(data.get("stage", "")).lower()), None)
        if stage is None:
            raise bad_request(f"data.stage must be one of {', '.join(RESUMABLE)}.")
        if str(payload.get("type", "")).lower() != (STAGE_TYPE + stage).lower():
            raise bad_request(f"'type' must be {STAGE_TYPE}{stage} for data.stage {stage}.")
        wanted = str(data.get("customExtensionStageInstanceId", "")).lower()
        instance = next((i for i in request["customExtensionCalloutInstances"] if i["id"].lower() == wanted), None)
        if instance is None or instance["_stage"] != stage:
            raise bad_request(f"The request has no {stage} custom extension stage instance '{wanted}'.")
        self._time_out(request, instance, self.state.now())
        if instance["status"] != "waitingForCallback":
            raise bad_request(f"The stage instance is {instance['status']}; it is not waiting for a callback.")
        decision = str(data.get("state") or "").lower()
        if decision not in ("", "denied", "canceled"):
            raise bad_request("data.state may only be Denied or Canceled: an extension cannot approve a request.")
        # The callback-data page allows Denied/Canceled at assignmentRequestCreated only, the Logic Apps page at
        # "request is created" or "request is approved", and the resume page contradicts its own example.
        # CONTRACTS.md: accept both early stages.
        if decision and stage not in (CREATED, APPROVED):
            raise bad_request(f"A request cannot be {decision} at {stage}.")
        instance["status"] = "callbackReceived"
        instance["detail"] = data.get("customExtensionStageInstanceDetail")
        request["status"] = request.pop("_statusBeforeWait", request["status"])
        if decision:
            self.end(request, decision, decision.capitalize())
            return
        self.spawn(self.advance(request, stage))


def engine(state: TenantState) -> Engine:
    if "em" not in state.extras:
        state.extras["em"] = Engine(state)
    return state.extras["em"]
