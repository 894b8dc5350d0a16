"""The Entitlement Management engine of the local tenant: request lifecycle, approvals, delivery, removal and
signed custom-extension callouts with their instance statuses.

Documentation followed:
- Request states and types: https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequest
- Custom extension stages, launch-and-wait vs launch-and-continue, callout timeout/retries:
  https://learn.microsoft.com/entra/id-governance/entitlement-management-logic-apps-integration and
  https://learn.microsoft.com/graph/api/resources/customextensionclientconfiguration (200–2,000 ms, 0 or 1 retry)
- Callout instance statuses: https://learn.microsoft.com/graph/api/resources/customextensioncalloutinstance
- Callout body: the flat PascalCase Logic App trigger schema EM generates, whose fields match
  https://learn.microsoft.com/graph/api/resources/accesspackageassignmentrequestcalloutdata
Where the documentation is silent (exact failure states after a failed or timed-out callout) the choice is
commented at the spot.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from .auth import issue_token
from .errors import GraphError, bad_request, not_found
from .state import EM_APP_ID, TenantState

log = logging.getLogger("local.tenant.em")

CREATED = "assignmentRequestCreated"
APPROVED = "assignmentRequestApproved"
GRANTED = "assignmentRequestGranted"
REMOVED = "assignmentRequestRemoved"
CONNECTION_TEST = "CustomExtensionConnectionTest"
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def iso_duration(value: str | None) -> timedelta:
    match = _DURATION.match(value or "")
    if not match or not value or value in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    days, hours, minutes, seconds = (int(x or 0) for x in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Engine:
    """One per tenant. Lives in state.extras["em"]; all methods run on the tenant's event loop."""

    def __init__(self, state: TenantState):
        self.state = state
        em = state.entitlement
        self.packages = {p["id"]: p for p in em.get("accessPackages", [])}
        self.catalogs = {c["id"]: c for c in em.get("catalogs", [])}
        self.extensions = {e["id"]: e for e in em.get("customExtensions", [])}
        self.requests: dict[str, dict[str, Any]] = {r["id"]: r for r in em.get("assignmentRequests", [])}
        self.assignments: dict[str, dict[str, Any]] = {a["id"]: a for a in em.get("assignments", [])}
        self.sent: list[dict[str, Any]] = []  # every callout attempt, for tests and the control API
        self.relay_app_id: str | None = None  # sign callouts as a relay identity instead of EM's app
        self.tasks: set[asyncio.Task] = set()

    # --- lookups ----------------------------------------------------------------------------------------
    def package(self, package_id: str) -> dict[str, Any]:
        if package_id not in self.packages:
            raise not_found(f"Access package '{package_id}' was not found.")
        return self.packages[package_id]

    def request(self, request_id: str) -> dict[str, Any]:
        if request_id not in self.requests:
            raise not_found(f"Request '{request_id}' was not found.", code="ResourceNotFound")
        return self.requests[request_id]

    def policy(self, request: dict[str, Any]) -> dict[str, Any]:
        package = self.package(request["_packageId"])
        return next(p for p in package["assignmentPolicies"] if p["id"] == request["_policyId"])

    def subject(self, user_id: str) -> dict[str, Any]:
        """An accessPackageSubject as Graph returns it for requestor and target."""
        user = self.state.users.get(user_id, {})
        return {
            "id": f"subject-{user_id}",
            "objectId": user_id,
            "displayName": user.get("displayName"),
            "email": user.get("mail"),
            "principalName": user.get("userPrincipalName"),
            "subjectType": "user",
            "onPremisesSecurityIdentifier": None,
        }

    # --- lifecycle --------------------------------------------------------------------------------------
    def submit(
        self,
        requestor_id: str,
        target_id: str,
        package_id: str,
        request_type: str | None = None,
        justification: str = "",
        answers: list | None = None,
    ) -> dict[str, Any]:
        self.state.user(requestor_id)
        target = self.state.user(target_id)
        package = self.package(package_id)
        policy = package["assignmentPolicies"][0]
        if policy.get("allowedTargetScope") == "allMemberUsers" and target.get("userType") != "Member":
            raise bad_request("The target is not in the policy's allowed target scope.")
        now = self.state.now()
        assignment_id = str(uuid.uuid4())
        self.assignments[assignment_id] = {
            "id": assignment_id,
            "state": "delivering",
            "status": "PendingApproval",
            "expiredDateTime": None,
            "schedule": {"startDateTime": stamp(now)},
            "_targetId": target_id,
            "_packageId": package_id,
            "_policyId": policy["id"],
        }
        request = {
            "id": str(uuid.uuid4()),
            "requestType": request_type or ("userAdd" if requestor_id == target_id else "onBehalfAdd"),
            "state": "submitted",
            "status": "Accepted",
            "createdDateTime": stamp(now),
            "completedDateTime": None,
            "justification": justification,
            "answers": answers or [],
            "schedule": {"startDateTime": stamp(now)},
            "customExtensionCalloutInstances": [],
            "_requestorId": requestor_id,
            "_targetId": target_id,
            "_packageId": package_id,
            "_policyId": policy["id"],
            "_assignmentId": assignment_id,
            "_approvalStage": 0,
            "_approvals": [],
        }
        self.requests[request["id"]] = request
        self.spawn(self.run_stage(request, CREATED))
        return request

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_stage(self, request: dict[str, Any], stage: str) -> None:
        """Call the stage's extension if the policy has one; continue unless it waits for a callback."""
        setting = self.stage_setting(request, stage)
        if setting is None:
            await self.after(request, stage)
            return
        extension = self.extensions[setting["customExtension"]["id"]]
        waits = bool(extension.get("callbackConfiguration"))
        ok = await self.call_out(request, stage, extension)
        if not ok:
            if waits:
                # Docs: a launch-and-wait callout that fails fails the request; the exact state is undocumented.
                self.fail(request, "CustomExtensionCalloutFailed")
            else:
                await self.after(request, stage)
            return
        if not waits:
            await self.after(request, stage)

    def stage_setting(self, request: dict[str, Any], stage: str) -> dict[str, Any] | None:
        for setting in self.policy(request).get("customExtensionStageSettings", []):
            if setting.get("stage") == stage:
                return setting
        return None

    async def after(self, request: dict[str, Any], stage: str) -> None:
        """What EM does once a stage is done."""
        if request["state"] in ("denied", "canceled", "deliveryFailed"):
            return
        if stage == CREATED:
            approval = self.policy(request).get("requestApprovalSettings") or {}
            if approval.get("isApprovalRequiredForAdd") and approval.get("stages"):
                request["state"], request["status"] = "pendingApproval", "PendingApproval"
                return
            await self.run_stage(request, APPROVED)
        elif stage == APPROVED:
            await self.deliver(request)
        elif stage == GRANTED:
            return

    async def deliver(self, request: dict[str, Any]) -> None:
        request["state"], request["status"] = "delivering", "Delivering"
        assignment = self.assignments[request["_assignmentId"]]
        group_id = self.package(request["_packageId"]).get("resourceGroupId")
        if group_id:
            members = self.state.group(group_id)["members"]
            if request["_targetId"] not in members:
                members.append(request["_targetId"])
        now = self.state.now()
        assignment.update(state="delivered", status="Delivered")
        expiration = self.policy(request).get("expiration") or {}
        if expiration.get("type") == "afterDuration" and expiration.get("duration"):
            ends = now + iso_duration(expiration["duration"])
            assignment["schedule"]["expiration"] = {"type": "afterDateTime", "endDateTime": stamp(ends)}
            assignment["_expiresAt"] = ends
        request.update(state="delivered", status="Delivered", completedDateTime=stamp(now))
        await self.run_stage(request, GRANTED)

    def approve(self, request_id: str, approver_id: str, justification: str = "") -> dict[str, Any]:
        request = self.request(request_id)
        if request["state"] != "pendingApproval":
            raise bad_request(f"The request is {request['state']}, not pending approval.")
        stages = self.policy(request)["requestApprovalSettings"]["stages"]
        index = request["_approvalStage"]
        if not self.may_approve(request, stages[index], approver_id):
            raise GraphError(403, "Forbidden", "The approver is not an approver of this stage.")
        request["_approvals"].append(
            {
                "stage": index + 1,
                "approverId": approver_id,
                "decision": "Approve",
                "justification": justification,
                "at": stamp(self.state.now()),
            }
        )
        request["_approvalStage"] = index + 1
        if index + 1 >= len(stages):
            request["state"], request["status"] = "delivering", "Approved"
            self.spawn(self.run_stage(request, APPROVED))
        return request

    def deny(self, request_id: str, approver_id: str, justification: str = "") -> dict[str, Any]:
        request = self.request(request_id)
        if request["state"] != "pendingApproval":
            raise bad_request(f"The request is {request['state']}, not pending approval.")
        stages = self.policy(request)["requestApprovalSettings"]["stages"]
        if not self.may_approve(request, stages[request["_approvalStage"]], approver_id):
            raise GraphError(403, "Forbidden", "The approver is not an approver of this stage.")
        request["_approvals"].append(
            {
                "stage": request["_approvalStage"] + 1,
                "approverId": approver_id,
                "decision": "Deny",
                "justification": justification,
            }
        )
        self.end(request, "denied", "Denied")
        return request

    def may_approve(self, request: dict[str, Any], stage: dict[str, Any], approver_id: str) -> bool:
        for approver in stage.get("primaryApprovers", []):
            kind = approver.get("@odata.type", "")
            if kind.endswith("requestorManager"):
                if self.state.users.get(request["_targetId"], {}).get("managerId") == approver_id:
                    return True
            elif kind.endswith("groupMembers"):
                if approver_id in self.state.group(approver["groupId"])["members"]:
                    return True
            elif kind.endswith("singleUser") and approver.get("userId") == approver_id:
                return True
        return False

    def end(self, request: dict[str, Any], state: str, status: str) -> None:
        request.update(state=state, status=status, completedDateTime=stamp(self.state.now()))
        assignment = self.assignments.get(request["_assignmentId"])
        if assignment is not None and assignment["state"] != "delivered":
            assignment.update(state="expired" if state == "denied" else "deliveryFailed", status=status)

    def fail(self, request: dict[str, Any], status: str) -> None:
        if request["state"] in ("delivered",):
            request["status"] = status  # delivered access stays; EM records the failure on the request
            return
        self.end(request, "deliveryFailed", status)

    def remove(self, assignment_id: str, request_type: str = "adminRemove", justification: str = "") -> dict:
        assignment = self.assignments.get(assignment_id)
        if assignment is None:
            raise not_found(f"Assignment '{assignment_id}' was not found.", code="ResourceNotFound")
        if assignment["state"] != "delivered":
            raise bad_request(f"The assignment is {assignment['state']} and cannot be removed.")
        now = self.state.now()
        removal = {
            "id": str(uuid.uuid4()),
            "requestType": request_type,
            "state": "submitted",
            "status": "Accepted",
            "createdDateTime": stamp(now),
            "completedDateTime": None,
            "justification": justification,
            "answers": [],
            "schedule": {"startDateTime": stamp(now)},
            "customExtensionCalloutInstances": [],
            "_requestorId": None,
            "_targetId": assignment["_targetId"],
            "_packageId": assignment["_packageId"],
            "_policyId": assignment["_policyId"],
            "_assignmentId": assignment_id,
            "_approvalStage": 0,
            "_approvals": [],
        }
        self.requests[removal["id"]] = removal
        group_id = self.package(assignment["_packageId"]).get("resourceGroupId")
        if group_id:
            members = self.state.group(group_id)["members"]
            if assignment["_targetId"] in members:
                members.remove(assignment["_targetId"])
        assignment.update(state="expired", status="Expired", expiredDateTime=stamp(now))
        removal.update(state="delivered", status="Delivered", completedDateTime=stamp(now))
        self.spawn(self.run_stage(removal, REMOVED))
        return removal

    def tick(self) -> dict[str, int]:
        """Evaluate callback timeouts and assignment expiry against the tenant clock."""
        now = self.state.now()
        timed_out = expired = 0
        for request in list(self.requests.values()):
            for instance in request["customExtensionCalloutInstances"]:
                deadline = instance.get("_deadline")
                if instance["status"] == "waitingForCallback" and deadline and now >= deadline:
                    instance["status"] = "callbackTimedOut"
                    timed_out += 1
                    # Docs: a wait that times out fails the request (state undocumented: deliveryFailed).
                    self.fail(request, "CustomExtensionCallbackTimedOut")
        for assignment in list(self.assignments.values()):
            if assignment["state"] == "delivered" and assignment.get("_expiresAt") and now >= assignment["_expiresAt"]:
                self.remove(assignment["id"], "systemRemove", "Assignment expired")
                expired += 1
        return {"timedOut": timed_out, "expired": expired}

    # --- callouts ---------------------------------------------------------------------------------------
    def callout_body(self, request: dict[str, Any], stage: str, instance_id: str, extension: dict) -> dict:
        package = self.package(request["_packageId"])
        catalog = self.catalogs.get(package.get("catalogId"), {})
        policy = self.policy(request)
        assignment = self.assignments[request["_assignmentId"]]
        target = self.subject(request["_targetId"])
        body = {
            "AccessPackageAssignmentRequestId": request["id"],
            "AccessPackageAssignmentId": assignment["id"],
            "CallbackUriPath": f"/identityGovernance/entitlementManagement/assignmentRequests/{request['id']}/resume",
            "CustomExtensionStageInstanceId": instance_id,
            "Stage": stage,
            "RequestType": request["requestType"],
            "State": request["state"],
            "Status": request["status"],
            "Answers": request.get("answers", []),
            "AccessPackage": {
                "Id": package["id"],
                "DisplayName": package["displayName"],
                "Description": package.get("description", ""),
            },
            "AccessPackageCatalog": {
                "Id": catalog.get("id"),
                "DisplayName": catalog.get("displayName"),
                "Description": catalog.get("description", ""),
            },
            "Assignment": {
                "Id": assignment["id"],
                "State": assignment["state"],
                "Status": assignment["status"],
                "AssignmentPolicy": {"Id": policy["id"], "DisplayName": policy["displayName"]},
                "Target": {
                    "Id": target["id"],
                    "ObjectId": target["objectId"],
                    "DisplayName": target["displayName"],
                    "ConnectedOrganization": None,
                    "Email": target["email"],
                    "PrincipalName": target["principalName"],
                },
            },
        }
        if request.get("_requestorId"):
            requestor = self.subject(request["_requestorId"])
            body["Requestor"] = {
                "Id": requestor["id"],
                "ObjectId": requestor["objectId"],
                "DisplayName": requestor["displayName"],
                "Email": requestor["email"],
                "PrincipalName": requestor["principalName"],
            }
        callback = extension.get("callbackConfiguration")
        if callback:
            body["CallbackConfiguration"] = {"DurationBeforeTimeout": callback["durationBeforeTimeout"]}
        return body

    def token_for(self, extension: dict) -> str:
        audience = (extension.get("authenticationConfiguration") or {}).get("resourceId")
        app_id = self.relay_app_id or EM_APP_ID
        app = self.state.applications.get(app_id, {})
        return issue_token(
            self.state,
            {
                "aud": audience,
                "appid": app_id,
                "idtyp": "app",
                "oid": app.get("servicePrincipalId", app_id),
                "sub": app.get("servicePrincipalId", app_id),
            },
        )

    async def call_out(self, request: dict[str, Any], stage: str, extension: dict) -> bool:
        instance = {
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
        body = self.callout_body(request, stage, instance["id"], extension)
        instance["_sentBody"] = body
        ok = await self.post(extension, body, instance)
        if not ok:
            instance["status"] = "calloutFailed"
            return False
        callback = extension.get("callbackConfiguration")
        if callback:
            instance["status"] = "waitingForCallback"
            instance["_deadline"] = self.state.now() + iso_duration(callback["durationBeforeTimeout"])
        return True

    async def post(self, extension: dict, body: dict, instance: dict) -> bool:
        client = extension.get("clientConfiguration") or {}
        timeout_ms = min(max(int(client.get("timeoutInMilliseconds") or 1000), 200), 2000)
        retries = min(max(int(client.get("maximumRetries") or 0), 0), 1)
        url = (extension.get("endpointConfiguration") or {}).get("url")
        for _ in range(retries + 1):
            instance["_attempts"] += 1
            record = {
                "url": url,
                "stage": body.get("Stage"),
                "instanceId": instance["id"],
                "body": body,
                "status": None,
                "error": None,
            }
            self.sent.append(record)
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        url,
                        json=body,
                        headers={"Authorization": f"Bearer {self.token_for(extension)}"},
                        timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000),
                    ) as response,
                ):
                    record["status"] = instance["_lastHttpStatus"] = response.status
                    if 200 <= response.status < 300:
                        return True
            except (TimeoutError, aiohttp.ClientError) as exc:
                record["error"] = type(exc).__name__
                instance["_lastHttpStatus"] = None
        return False

    async def connection_test(self, extension: dict) -> bool:
        instance = {"id": str(uuid.uuid4()), "_attempts": 0, "_lastHttpStatus": None}
        catalog = self.catalogs.get(extension.get("catalogId"), {})
        body = {
            "Stage": CONNECTION_TEST,
            "CustomExtensionStageInstanceId": instance["id"],
            "AccessPackageCatalog": {"Id": catalog.get("id"), "DisplayName": catalog.get("displayName")},
        }
        return await self.post(extension, body, instance)

    # --- resume -----------------------------------------------------------------------------------------
    def resume(self, request_id: str, payload: dict[str, Any]) -> None:
        """POST .../assignmentRequests/{id}/resume: https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-resume"""
        request = self.request(request_id)
        if not isinstance(payload, dict):
            raise bad_request("The request body must be a JSON object.")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise bad_request("The 'data' property is required.")
        if data.get("@odata.type", "").lstrip("#") != "microsoft.graph.accessPackageAssignmentRequestCallbackData":
            raise bad_request("data.@odata.type must be microsoft.graph.accessPackageAssignmentRequestCallbackData.")
        stage = data.get("stage")
        expected_type = f"microsoft.graph.accessPackageCustomExtensionStage.{stage}"
        if payload.get("type") != expected_type:
            raise bad_request(f"The 'type' must be {expected_type}.")
        instance_id = data.get("customExtensionStageInstanceId")
        instance = next((i for i in request["customExtensionCalloutInstances"] if i["id"] == instance_id), None)
        # Docs are silent on the error for a wrong or finished instance; we answer 400 with a clear message.
        if instance is None or instance.get("_stage") != stage:
            raise bad_request("No custom extension stage instance with that id and stage exists on this request.")
        if instance["status"] != "waitingForCallback":
            raise bad_request(f"The stage instance is {instance['status']}, not waitingForCallback.")
        state = data.get("state")
        if state not in (None, "denied"):
            raise bad_request("data.state may only be 'denied' (an extension cannot approve).")
        # CONTRACTS: the docs disagree whether denied is allowed at created only or also at approved: both accepted.
        if state == "denied" and stage not in (CREATED, APPROVED):
            raise bad_request(f"A request cannot be denied at {stage}.")
        instance["status"] = "callbackReceived"
        instance["detail"] = data.get("customExtensionStageInstanceDetail")
        if state == "denied":
            self.end(request, "denied", "Denied")
            return
        self.spawn(self.after(request, stage))

    # --- Graph shapes -------------------------------------------------------------------------------------
    def request_json(self, request: dict[str, Any], expand: dict[str, dict]) -> dict[str, Any]:
        out = {k: v for k, v in request.items() if not k.startswith("_")}
        out["customExtensionCalloutInstances"] = [
            {k: v for k, v in i.items() if not k.startswith("_")} for i in request["customExtensionCalloutInstances"]
        ]
        if "requestor" in expand and request.get("_requestorId"):
            out["requestor"] = self.subject(request["_requestorId"])
        if "accesspackage" in expand:
            out["accessPackage"] = self.package_json(self.package(request["_packageId"]))
        if "assignment" in expand:
            out["assignment"] = self.assignment_json(self.assignments[request["_assignmentId"]], expand["assignment"])
        return out

    def package_json(self, package: dict[str, Any]) -> dict[str, Any]:
        return {k: package.get(k) for k in ("id", "displayName", "description", "isHidden")} | {
            "createdDateTime": "2025-03-01T09:00:00Z",
            "modifiedDateTime": "2025-03-01T09:00:00Z",
        }

    def assignment_json(self, assignment: dict[str, Any], expand: dict[str, dict] | None = None) -> dict[str, Any]:
        out = {k: v for k, v in assignment.items() if not k.startswith("_")}
        expand = expand or {}
        if "target" in expand:
            out["target"] = self.subject(assignment["_targetId"])
        if "accesspackage" in expand:
            out["accessPackage"] = self.package_json(self.package(assignment["_packageId"]))
        if "assignmentpolicy" in expand:
            policy = next(
                p
                for p in self.package(assignment["_packageId"])["assignmentPolicies"]
                if p["id"] == assignment["_policyId"]
            )
            out["assignmentPolicy"] = {"id": policy["id"], "displayName": policy["displayName"]}
        return out


def engine(state: TenantState) -> Engine:
    if "em" not in state.extras:
        state.extras["em"] = Engine(state)
    return state.extras["em"]
