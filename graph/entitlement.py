"""Entitlement Management: re-read an assignment request, resume it, remove an assignment.

Docs: https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-get ,
https://learn.microsoft.com/graph/api/accesspackageassignmentrequest-resume ,
https://learn.microsoft.com/graph/api/entitlementmanagement-post-assignmentrequests (adminRemove).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import NotFound
from .raw import GraphCaller, segment

REQUESTS = "/identityGovernance/entitlementManagement/assignmentRequests"
ASSIGNMENTS = "/identityGovernance/entitlementManagement/assignments"


@dataclass(frozen=True)
class AssignmentRequest:
    """What Graph says about a request: the facts the worker trusts (the callout body is only a hint)."""

    id: str
    state: str
    status: str
    request_type: str
    requestor_id: str | None
    target_id: str | None
    target_name: str | None
    access_package_id: str | None
    assignment_id: str | None
    justification: str | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AssignmentRequest:
        requestor = raw.get("requestor") or {}
        assignment = raw.get("assignment") or {}
        target = assignment.get("target") or {}
        package = raw.get("accessPackage") or assignment.get("accessPackage") or {}
        return cls(
            id=raw["id"],
            state=raw.get("state") or "",
            status=raw.get("status") or "",
            request_type=raw.get("requestType") or "",
            requestor_id=requestor.get("objectId") or requestor.get("id"),
            target_id=target.get("objectId") or assignment.get("targetId"),
            target_name=target.get("displayName"),
            access_package_id=package.get("id") or assignment.get("accessPackageId"),
            assignment_id=assignment.get("id"),
            justification=raw.get("justification"),
            raw=raw,
        )


class Entitlement:
    def __init__(self, caller: GraphCaller):
        self._caller = caller

    async def request(self, request_id: str) -> AssignmentRequest | None:
        try:
            raw = await self._caller.json(
                "GET",
                f"{REQUESTS}/{segment(request_id)}",
                query={"$expand": "requestor,accessPackage,assignment($expand=target)"},
            )
        except NotFound:
            return None
        return AssignmentRequest.from_json(raw or {})

    async def resume(
        self, request_id: str, stage: str, stage_instance_id: str, detail: str, *, denied: bool = False
    ) -> None:
        """Resume a waiting request; `denied` is honoured by EM only early in the request."""
        data: dict[str, Any] = {
            "@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
            "stage": stage,
            "customExtensionStageInstanceId": stage_instance_id,
            "customExtensionStageInstanceDetail": detail[:1000],
        }
        if denied:
            data["state"] = "denied"
        body = {
            "source": "MFA Reset Extension",
            "type": f"microsoft.graph.accessPackageCustomExtensionStage.{stage}",
            "data": data,
        }
        await self._caller.json("POST", f"{REQUESTS}/{segment(request_id)}/resume", body=body)

    async def assignment_state(self, assignment_id: str) -> str | None:
        """The assignment's state (delivering, delivered, expired, ...); None when it no longer exists.

        https://learn.microsoft.com/graph/api/accesspackageassignment-get
        """
        try:
            path = f"{ASSIGNMENTS}/{segment(assignment_id)}"
            raw = await self._caller.json("GET", path, query={"$select": "id,state"})
        except NotFound:
            return None
        return (raw or {}).get("state") or ""

    async def remove_assignment(self, assignment_id: str, justification: str) -> dict[str, Any] | None:
        """Ask EM to remove an assignment: a new request of type adminRemove naming the assignment (201 with the
        request; EM then removes the access, e.g. the group membership, and runs the removed stage)."""
        body = {"requestType": "adminRemove", "assignment": {"id": assignment_id}, "justification": justification}
        return await self._caller.json("POST", REQUESTS, body=body)
