"""The local tenant's Entitlement Management: request lifecycle, signed callouts to an extension endpoint played
by a small aiohttp receiver, resume through msgraph-sdk (typed) and httpx (raw), timeouts, removal and expiry."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from azure.identity.aio import ManagedIdentityCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.assignment_requests_request_builder import (  # noqa: E501
    AssignmentRequestsRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.item.access_package_assignment_request_item_request_builder import (  # noqa: E501
    AccessPackageAssignmentRequestItemRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.item.resume.resume_post_request_body import (  # noqa: E501
    ResumePostRequestBody,
)
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
from msgraph.generated.models.access_package_assignment_request_callback_data import (
    AccessPackageAssignmentRequestCallbackData,
)
from msgraph.generated.models.access_package_custom_extension_stage import AccessPackageCustomExtensionStage
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from local.tenant import TenantServer
from local.tenant.state import EM_APP_ID
from tests.conftest import F
from tests.graph_clients import graph_client

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EM_PATH = "/identityGovernance/entitlementManagement"
PACKAGE = F.build()["entitlementManagement"]["accessPackages"][0]
POLICY = PACKAGE["assignmentPolicies"][0]
EXT_WAIT, EXT_CONTINUE = (e["id"] for e in F.build()["entitlementManagement"]["customExtensions"])
CREATED, APPROVED, GRANTED, REMOVED = (
    "assignmentRequestCreated",
    "assignmentRequestApproved",
    "assignmentRequestGranted",
    "assignmentRequestRemoved",
)
# The fields of the Logic App trigger schema EM generates (flat, PascalCase).
TRIGGER_FIELDS = {
    "AccessPackageAssignmentRequestId",
    "CallbackUriPath",
    "CustomExtensionStageInstanceId",
    "Stage",
    "RequestType",
    "Answers",
    "State",
    "Status",
    "CallbackConfiguration",
    "AccessPackage",
    "AccessPackageCatalog",
    "Assignment",
    "Requestor",
}


class Receiver:
    """The custom extension's endpoint: verifies EM's bearer, records each call, answers as told."""

    def __init__(self, tenant: TenantServer):
        tid = tenant.state.tenant_id
        keys = httpx.get(f"{tenant.url}/{tid}/discovery/keys").json()["keys"]
        self.key = jwt.PyJWK(keys[0]).key
        self.issuer = f"https://sts.windows.net/{tid}/"
        self.audience = tenant.state.tenant["calloutAudience"]
        self.calls: list[dict[str, Any]] = []
        self.status = 202
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            claims = jwt.decode(
                request.headers.get("Authorization", "").removeprefix("Bearer "),
                self.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
            )
        except jwt.PyJWTError as exc:
            self.calls.append({"body": body, "claims": None, "error": str(exc)})
            return web.Response(status=401)
        self.calls.append({"body": body, "claims": claims})
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status, headers={"x-ms-workflow-run-id": "08584"})

    def bodies(self, stage: str) -> list[dict[str, Any]]:
        return [c["body"] for c in self.calls if c["body"].get("Stage") == stage]


@pytest.fixture
async def receiver(tenant_env: TenantServer) -> AsyncIterator[Receiver]:
    found = Receiver(tenant_env)
    app = web.Application()
    app.router.add_post("/callout", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    found.url = f"http://127.0.0.1:{port}/callout"
    async with httpx.AsyncClient(base_url=tenant_env.url) as control:
        (await control.post("/_control/em/extensions/url", json={"url": found.url})).raise_for_status()
    yield found
    await runner.cleanup()


@pytest.fixture
async def em(tenant_env: TenantServer, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tenant_env.url, timeout=10) as client:
        yield client


async def until(probe: Callable[[], Any], what: str, seconds: float = 5.0) -> Any:
    """Poll an async probe until it returns something truthy (callouts are sent in the background)."""
    for _ in range(int(seconds / 0.02)):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def state(em: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await em.get(f"/_control/em/requests/{request_id}")
    response.raise_for_status()
    return response.json()


async def callout(em: httpx.AsyncClient, request_id: str, stage: str, status: str) -> dict[str, Any]:
    async def probe():
        found = [c for c in (await state(em, request_id))["callouts"] if c["stage"] == stage]
        return found[-1] if found and found[-1]["status"] == status else None

    return await until(probe, f"the {stage} callout to be {status}")


async def request_state(em: httpx.AsyncClient, request_id: str, wanted: str) -> dict[str, Any]:
    async def probe():
        current = await state(em, request_id)
        return current if current["request"]["state"] == wanted else None

    return await until(probe, f"request state {wanted}")


async def submit(em: httpx.AsyncClient, **extra: Any) -> str:
    body = {"requestorId": F.U["megan"], "targetId": F.U["tom"], "accessPackageId": PACKAGE["id"], **extra}
    response = await em.post("/_control/em/requests", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def graph_token(client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(GRAPH_SCOPE)).token


async def raw(
    tenant: TenantServer, method: str, path: str, client_id: str | None = None, token: str | None = None, **kw
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or await graph_token(client_id)}"}
    async with httpx.AsyncClient(base_url=tenant.graph_url, headers=headers) as client:
        return await client.request(method, EM_PATH + path, **kw)


def resume_body(stage: str, instance_id: str, state_value: str | None = None, stage_spelling: str | None = None):
    data = {
        "@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
        "stage": stage_spelling or stage,
        "customExtensionStageInstanceId": instance_id,
        "customExtensionStageInstanceDetail": "checked by the test",
    }
    if state_value:
        data["state"] = state_value
    return {"source": "tests", "type": f"microsoft.graph.accessPackageCustomExtensionStage.{stage}", "data": data}


async def resume_raw(tenant: TenantServer, request_id: str, body: dict[str, Any], token=None) -> httpx.Response:
    return await raw(tenant, "POST", f"/assignmentRequests/{request_id}/resume", token=token, json=body)


async def to_granted(tenant: TenantServer, em: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """Submit, pass the created stage and both approvals; returns the request id and its waiting granted callout."""
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    assert (
        await resume_raw(tenant, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    ).status_code == 204
    await request_state(em, request_id, "pendingApproval")
    for approver in (F.U["megan"], F.U["sam"]):
        (await em.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": approver})).raise_for_status()
    return request_id, await callout(em, request_id, GRANTED, "waitingForCallback")


def onboarding(tenant: TenantServer) -> list[str]:
    return tenant.state.groups[F.G["onboarding"]]["members"]


# --- lifecycle and callouts -------------------------------------------------------------------------------


async def test_a_request_walks_every_stage_and_delivers_the_group_when_the_extension_resumes_through_the_sdk(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    client = graph_client(tenant_env)
    requests = client.identity_governance.entitlement_management.assignment_requests
    request_id = await submit(em, justification="lost phone")
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    assert (await state(em, request_id))["request"]["status"] == "WaitingForCallback"
    await requests.by_access_package_assignment_request_id(request_id).resume.post(
        ResumePostRequestBody(
            source="tests",
            type=f"microsoft.graph.accessPackageCustomExtensionStage.{CREATED}",
            data=AccessPackageAssignmentRequestCallbackData(
                stage=AccessPackageCustomExtensionStage.AssignmentRequestCreated,
                custom_extension_stage_instance_id=created["customExtensionStageInstanceId"],
                custom_extension_stage_instance_detail="guardrails passed",
            ),
        )
    )
    pending = await request_state(em, request_id, "pendingApproval")
    assert pending["callouts"][0]["status"] == "callbackReceived"
    assert pending["callouts"][0]["detail"] == "guardrails passed"
    assert F.U["tom"] not in onboarding(tenant_env)
    for approver in (F.U["megan"], F.U["sam"]):
        (await em.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": approver})).raise_for_status()
    approved = await callout(em, request_id, APPROVED, "calloutSent")  # launch and continue: no wait
    granted = await callout(em, request_id, GRANTED, "waitingForCallback")
    assert approved["sentBody"]["Stage"] == APPROVED
    assert F.U["tom"] in onboarding(tenant_env)
    response = await resume_raw(tenant_env, request_id, resume_body(GRANTED, granted["customExtensionStageInstanceId"]))
    assert response.status_code == 204
    final = await callout(em, request_id, GRANTED, "callbackReceived")
    assert final["externalCorrelationId"] == "08584"
    done = await state(em, request_id)
    assert (done["request"]["state"], done["request"]["status"]) == ("delivered", "Delivered")
    assert done["assignment"]["state"] == "delivered"
    assert [c["body"]["Stage"] for c in receiver.calls] == [CREATED, APPROVED, GRANTED]


async def test_callouts_carry_the_documented_flat_body_and_an_em_bearer_for_the_extension_audience(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    answers = [{"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "yes", "displayValue": "Yes"}]
    request_id = await submit(em, justification="lost phone", answers=answers)
    await callout(em, request_id, CREATED, "waitingForCallback")
    call = receiver.calls[0]
    body = call["body"]
    assert set(body) == TRIGGER_FIELDS
    assert body["AccessPackageAssignmentRequestId"] == request_id
    assert body["CallbackUriPath"] == f"{EM_PATH}/assignmentRequests/{request_id}/resume"
    assert (body["Stage"], body["RequestType"], body["State"]) == (CREATED, "onBehalfAdd", "submitted")
    assert body["CallbackConfiguration"] == {"DurationBeforeTimeout": "PT1H"}
    assert body["Answers"][0]["Value"] == "yes"
    assert body["AccessPackage"] == {
        "Id": PACKAGE["id"],
        "DisplayName": PACKAGE["displayName"],
        "Description": PACKAGE["description"],
    }
    assert body["AccessPackageCatalog"]["Id"] == PACKAGE["catalogId"]
    assert body["Assignment"]["Target"]["ObjectId"] == F.U["tom"]
    assert body["Assignment"]["AssignmentPolicy"] == {"Id": POLICY["id"], "DisplayName": POLICY["displayName"]}
    assert body["Requestor"]["ObjectId"] == F.U["megan"]
    claims = call["claims"]
    assert (claims["appid"], claims["idtyp"]) == (EM_APP_ID, "app")
    assert claims["oid"] == F.APP["em"][1]


async def test_a_launch_and_continue_callout_has_no_callback_configuration(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    request_id, _ = await to_granted(tenant_env, em)
    approved = receiver.bodies(APPROVED)[0]
    assert "CallbackConfiguration" not in approved
    assert approved["AccessPackageAssignmentRequestId"] == request_id


async def test_callouts_are_signed_as_the_relay_identity_once_configured(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    (await em.post("/_control/em/relay", json={"appId": F.APP["relay"][0]})).raise_for_status()
    request_id = await submit(em)
    await callout(em, request_id, CREATED, "waitingForCallback")
    assert receiver.calls[0]["claims"]["appid"] == F.APP["relay"][0]


# --- resume rules ---------------------------------------------------------------------------------------------


async def test_a_resume_naming_an_unknown_stage_instance_is_refused_and_the_request_keeps_waiting(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id = await submit(em)
    await callout(em, request_id, CREATED, "waitingForCallback")
    body = resume_body(CREATED, "957d0c50-466b-4840-bb5b-c92cea7141ff")
    response = await resume_raw(tenant_env, request_id, body)
    assert response.status_code == 400
    assert "957d0c50" in response.json()["error"]["message"]
    assert (await state(em, request_id))["callouts"][0]["status"] == "waitingForCallback"


async def test_a_resume_whose_type_disagrees_with_its_stage_is_refused(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    body = resume_body(CREATED, created["customExtensionStageInstanceId"])
    body["type"] = f"microsoft.graph.accessPackageCustomExtensionStage.{GRANTED}"
    assert (await resume_raw(tenant_env, request_id, body)).status_code == 400


async def test_the_same_stage_instance_cannot_be_resumed_twice(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    body = resume_body(CREATED, created["customExtensionStageInstanceId"])
    assert (await resume_raw(tenant_env, request_id, body)).status_code == 204
    second = await resume_raw(tenant_env, request_id, body)
    assert second.status_code == 400
    assert "callbackReceived" in second.json()["error"]["message"]


async def test_the_documented_deny_example_at_created_denies_the_request_and_grants_nothing(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    # Spelled as the docs' example spells it: "AssignmentRequestCreated" and a lower-case state.
    body = resume_body(CREATED, created["customExtensionStageInstanceId"], "denied", "AssignmentRequestCreated")
    assert (await resume_raw(tenant_env, request_id, body)).status_code == 204
    denied = await request_state(em, request_id, "denied")
    assert denied["request"]["status"] == "Denied"
    approve = await em.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": F.U["megan"]})
    assert approve.status_code == 400
    assert F.U["tom"] not in onboarding(tenant_env)


async def test_an_extension_cannot_approve_a_request(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    body = resume_body(CREATED, created["customExtensionStageInstanceId"], "delivered")
    assert (await resume_raw(tenant_env, request_id, body)).status_code == 400
    assert (await state(em, request_id))["request"]["state"] == "submitted"


async def test_denying_at_the_granted_stage_is_refused_and_the_access_stays(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id, granted = await to_granted(tenant_env, em)
    body = resume_body(GRANTED, granted["customExtensionStageInstanceId"], "Denied")
    response = await resume_raw(tenant_env, request_id, body)
    assert response.status_code == 400
    current = await state(em, request_id)
    assert current["request"]["state"] == "delivered"
    assert current["callouts"][-1]["status"] == "waitingForCallback"
    assert F.U["tom"] in onboarding(tenant_env)


async def test_resume_needs_entitlement_management_readwrite(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    client = graph_client(tenant_env, client_id=F.APP["limited"][0])
    item = client.identity_governance.entitlement_management.assignment_requests.by_access_package_assignment_request_id
    data = AccessPackageAssignmentRequestCallbackData(
        stage=AccessPackageCustomExtensionStage.AssignmentRequestCreated,
        custom_extension_stage_instance_id=created["customExtensionStageInstanceId"],
    )
    with pytest.raises(ODataError) as refused:
        await item(request_id).resume.post(ResumePostRequestBody(source="t", type=f"x.{CREATED}", data=data))
    assert refused.value.response_status_code == 403
    assert (await state(em, request_id))["callouts"][0]["status"] == "waitingForCallback"


# --- failures and time ------------------------------------------------------------------------------------


async def test_a_callout_slower_than_the_timeout_is_retried_once_then_fails_the_request(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    extension = next(e for e in F.build()["entitlementManagement"]["customExtensions"] if e["id"] == EXT_WAIT)
    extension["endpointConfiguration"]["url"] = receiver.url
    extension["clientConfiguration"] = {"timeoutInMilliseconds": 200, "maximumRetries": 1}
    receiver.delay = 0.5
    (await em.post("/_control/em/extensions", json=extension)).raise_for_status()
    request_id = await submit(em)
    failed = await callout(em, request_id, CREATED, "calloutFailed")
    assert (failed["attempts"], failed["lastHttpStatus"]) == (2, None)
    assert len(receiver.bodies(CREATED)) == 2
    assert (await request_state(em, request_id, "deliveryFailed"))["request"][
        "status"
    ] == "CustomExtensionCalloutFailed"


async def test_a_server_error_without_retries_is_one_attempt_and_a_failed_callout(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    extension = next(e for e in F.build()["entitlementManagement"]["customExtensions"] if e["id"] == EXT_WAIT)
    extension["endpointConfiguration"]["url"] = receiver.url
    extension["clientConfiguration"] = {"timeoutInMilliseconds": 1000, "maximumRetries": 0}
    (await em.post("/_control/em/extensions", json=extension)).raise_for_status()
    receiver.status = 500
    request_id = await submit(em)
    failed = await callout(em, request_id, CREATED, "calloutFailed")
    assert (failed["attempts"], failed["lastHttpStatus"]) == (1, 500)


async def test_a_callback_that_never_comes_times_out_on_tick_and_fails_the_request(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    assert (await em.post("/_control/em/tick")).json()["timedOut"] == 0  # PT1H has not passed yet
    token = await graph_token()  # Graph checks token times against the real clock, not the advanced one
    (await em.post("/_control/clock", json={"advanceSeconds": 3601})).raise_for_status()
    assert (await em.post("/_control/em/tick")).json()["timedOut"] == 1
    current = await state(em, request_id)
    assert current["callouts"][0]["status"] == "callbackTimedOut"
    assert (current["request"]["state"], current["request"]["status"]) == (
        "deliveryFailed",
        "CustomExtensionCallbackTimedOut",
    )
    late_body = resume_body(CREATED, created["customExtensionStageInstanceId"])
    late = await resume_raw(tenant_env, request_id, late_body, token)
    assert late.status_code == 400


async def test_an_assignment_expires_after_the_policy_duration_and_the_target_leaves_the_group(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    await to_granted(tenant_env, em)
    assert (await em.post("/_control/em/tick")).json()["expired"] == 0
    (await em.post("/_control/clock", json={"advanceSeconds": 8 * 3600 + 1})).raise_for_status()
    assert (await em.post("/_control/em/tick")).json()["expired"] == 1
    removed = await until(lambda: asyncio.sleep(0, receiver.bodies(REMOVED)), "the removed callout")
    assert removed[0]["RequestType"] == "systemRemove"
    assert F.U["tom"] not in onboarding(tenant_env)


# --- approvals ----------------------------------------------------------------------------------------------


async def test_only_the_approver_of_the_current_stage_may_decide(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    await resume_raw(tenant_env, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    await request_state(em, request_id, "pendingApproval")
    url = f"/_control/em/requests/{request_id}/approve"
    assert (await em.post(url, json={"approverId": F.U["sam"]})).status_code == 403  # stage 1 is the manager
    assert (await em.post(url, json={"approverId": F.U["megan"]})).status_code == 200
    assert (await em.post(url, json={"approverId": F.U["megan"]})).status_code == 403  # stage 2 is the group
    deny = await em.post(f"/_control/em/requests/{request_id}/deny", json={"approverId": F.U["hank"]})
    assert deny.status_code == 200
    assert (await state(em, request_id))["request"]["state"] == "denied"
    assert F.U["tom"] not in onboarding(tenant_env)


# --- removal and admin requests -----------------------------------------------------------------------------


async def test_admin_remove_through_the_sdk_takes_the_target_out_and_calls_out_the_removed_stage(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    request_id, _ = await to_granted(tenant_env, em)
    assignment_id = (await state(em, request_id))["assignment"]["id"]
    client = graph_client(tenant_env)
    created = await client.identity_governance.entitlement_management.assignment_requests.post(
        AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminRemove, assignment=AccessPackageAssignment(id=assignment_id)
        )
    )
    assert created.request_type == AccessPackageRequestType.AdminRemove
    removed = await until(lambda: asyncio.sleep(0, receiver.bodies(REMOVED)), "the removed callout")
    assert removed[0]["AccessPackageAssignmentRequestId"] == created.id
    assert removed[0]["Assignment"]["Id"] == assignment_id
    assert F.U["tom"] not in onboarding(tenant_env)
    again = await raw(
        tenant_env,
        "POST",
        "/assignmentRequests",
        json={"requestType": "adminRemove", "assignment": {"id": assignment_id}},
    )
    assert again.status_code == 400


async def test_admin_add_delivers_without_approval(tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver):
    body = {
        "requestType": "AdminAdd",
        "assignment": {"targetId": F.U["tom"], "assignmentPolicyId": POLICY["id"], "accessPackageId": PACKAGE["id"]},
    }
    response = await raw(tenant_env, "POST", "/assignmentRequests", json=body)
    assert response.status_code == 201
    assert (response.json()["state"], response.json()["status"]) == ("submitted", "Accepted")
    request_id = response.json()["id"]
    created = await callout(em, request_id, CREATED, "waitingForCallback")
    await resume_raw(tenant_env, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    await callout(em, request_id, GRANTED, "waitingForCallback")
    assert F.U["tom"] in onboarding(tenant_env)
    assert receiver.bodies(CREATED)[0]["Requestor"]["ObjectId"] == F.APP["func"][1]


# --- extensions ---------------------------------------------------------------------------------------------


async def test_registering_an_extension_sends_a_signed_connection_test(
    tenant_env: TenantServer, em: httpx.AsyncClient, receiver: Receiver
):
    extension = next(e for e in F.build()["entitlementManagement"]["customExtensions"] if e["id"] == EXT_CONTINUE)
    extension.pop("id")
    extension["endpointConfiguration"]["url"] = receiver.url
    response = await em.post("/_control/em/extensions", json=extension)
    assert response.status_code == 201
    tests = await until(lambda: asyncio.sleep(0, receiver.bodies("CustomExtensionConnectionTest")), "the test call")
    assert tests[0]["AccessPackageCatalog"]["Id"] == PACKAGE["catalogId"]
    assert receiver.calls[-1]["claims"]["appid"] == EM_APP_ID
    sent = (await em.get("/_control/em/callouts")).json()
    assert sent[-1]["stage"] == "CustomExtensionConnectionTest"


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("clientConfiguration", {"timeoutInMilliseconds": 5000, "maximumRetries": 0}),
        ("clientConfiguration", {"timeoutInMilliseconds": 1000, "maximumRetries": 2}),
        ("callbackConfiguration", {"durationBeforeTimeout": "PT1M"}),
        ("callbackConfiguration", {"durationBeforeTimeout": "P15D"}),
    ],
)
async def test_an_extension_outside_the_documented_limits_is_refused(
    tenant_env: TenantServer, em: httpx.AsyncClient, change: str, value: dict
):
    extension = next(e for e in F.build()["entitlementManagement"]["customExtensions"] if e["id"] == EXT_WAIT)
    extension[change] = value
    assert (await em.post("/_control/em/extensions", json=extension)).status_code == 400


# --- reads ------------------------------------------------------------------------------------------------


async def test_get_with_expand_returns_the_requestor_and_the_assignment_target(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id = await submit(em, justification="lost phone")
    await callout(em, request_id, CREATED, "waitingForCallback")
    client = graph_client(tenant_env)
    builder = AccessPackageAssignmentRequestItemRequestBuilder
    config = RequestConfiguration(
        query_parameters=builder.AccessPackageAssignmentRequestItemRequestBuilderGetQueryParameters(
            expand=["requestor", "accessPackage", "assignment($expand=target)"]
        )
    )
    item = client.identity_governance.entitlement_management.assignment_requests
    found = await item.by_access_package_assignment_request_id(request_id).get(config)
    assert found.requestor.object_id == F.U["megan"]
    assert found.assignment.target.object_id == F.U["tom"]
    assert found.access_package.id == PACKAGE["id"]
    assert found.justification == "lost phone"
    assert found.custom_extension_callout_instances[0].status.value == "waitingForCallback"
    query = {"$expand": "assignment($expand=target)", "$select": "id,state"}
    response = await raw(tenant_env, "GET", f"/assignmentRequests/{request_id}", params=query)
    body = response.json()
    assert set(body) == {"@odata.context", "id", "state", "assignment"}
    assert body["assignment"]["target"]["displayName"] == "Tom Target"


async def test_an_unknown_expand_is_a_bad_request(tenant_env: TenantServer, em: httpx.AsyncClient):
    request_id = await submit(em)
    response = await raw(tenant_env, "GET", f"/assignmentRequests/{request_id}", params={"$expand": "approver"})
    assert response.status_code == 400


async def test_lists_filter_requests_and_assignments_as_documented(tenant_env: TenantServer, em: httpx.AsyncClient):
    mine = await submit(em)
    await submit(em, requestorId=F.U["tom"])  # a self-request by tom
    await callout(em, mine, CREATED, "waitingForCallback")
    client = graph_client(tenant_env)
    params = AssignmentRequestsRequestBuilder.AssignmentRequestsRequestBuilderGetQueryParameters(
        filter=f"requestor/objectId eq '{F.U['megan']}' and accessPackage/id eq '{PACKAGE['id']}'",
        expand=["requestor"],
    )
    page = await client.identity_governance.entitlement_management.assignment_requests.get(
        RequestConfiguration(query_parameters=params)
    )
    assert [r.id for r in page.value] == [mine]
    by_state = await raw(tenant_env, "GET", "/assignmentRequests", params={"$filter": "state eq 'pendingApproval'"})
    assert by_state.json()["value"] == []
    assignments = await raw(
        tenant_env,
        "GET",
        "/assignments",
        params={"$expand": "target", "$filter": f"target/objectid eq '{F.U['tom']}' and state eq 'Delivering'"},
    )
    assert len(assignments.json()["value"]) == 2
    assert assignments.json()["value"][0]["target"]["objectId"] == F.U["tom"]


async def test_the_limited_identity_is_forbidden_to_read_or_write_requests(
    tenant_env: TenantServer, em: httpx.AsyncClient
):
    request_id = await submit(em)
    limited = F.APP["limited"][0]
    assert (await raw(tenant_env, "GET", f"/assignmentRequests/{request_id}", client_id=limited)).status_code == 403
    assert (await raw(tenant_env, "GET", "/assignments", client_id=limited)).status_code == 403
    body = {"requestType": "adminRemove", "assignment": {"id": "a6bb6942-3ae1-4259-9908-0133aaee9377"}}
    response = await raw(tenant_env, "POST", "/assignmentRequests", client_id=limited, json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
