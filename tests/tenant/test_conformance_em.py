"""Conformance of the local tenant's Entitlement Management with Microsoft's documentation (see CONTRACTS.md):
the custom extension is played by an aiohttp receiver on its own thread that verifies EM's bearer against the
tenant's published JWKS; the extension resumes through msgraph-sdk (typed) and httpx (raw).

Documentation: entitlement-management-logic-apps-integration (stages, launch and wait / continue, trigger body),
accesspackageassignmentrequest-resume (body, 204), accessPackageAssignmentRequestCallbackData (Denied/Canceled),
customExtensionClientConfiguration (200–2,000 ms, 0 or 1 retry), entitlementmanagement-post-assignmentrequests
(adminRemove), accesspackageassignmentrequest-get ($expand).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from azure.identity.aio import ManagedIdentityCredential
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.identity_governance.entitlement_management.assignment_requests.item.resume.resume_post_request_body import (  # noqa: E501
    ResumePostRequestBody,
)
from msgraph.generated.models.access_package_assignment_request_callback_data import (
    AccessPackageAssignmentRequestCallbackData,
)
from msgraph.generated.models.access_package_custom_extension_stage import AccessPackageCustomExtensionStage
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from local.tenant import EM_APP_ID, TenantServer
from local.tenant.em_engine import engine
from local.threaded import ThreadedServer
from tests.conftest import F
from tests.graph_clients import graph_client

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EM_PATH = "/identityGovernance/entitlementManagement"
FIXTURE_EM = F.build()["entitlementManagement"]
PACKAGE = FIXTURE_EM["accessPackages"][0]
POLICY = PACKAGE["assignmentPolicies"][0]
CATALOG = FIXTURE_EM["catalogs"][0]
EXT_WAIT, EXT_CONTINUE = (e["id"] for e in FIXTURE_EM["customExtensions"])
CREATED = "assignmentRequestCreated"
APPROVED = "assignmentRequestApproved"
GRANTED = "assignmentRequestGranted"
REMOVED = "assignmentRequestRemoved"
CONNECTION_TEST = "CustomExtensionConnectionTest"
CALLBACK_DATA = "microsoft.graph.accessPackageAssignmentRequestCallbackData"
STAGE_TYPE = "microsoft.graph.accessPackageCustomExtensionStage."


# --- the custom extension's endpoint ---------------------------------------------------------------------


class Receiver(ThreadedServer):
    """A Logic App trigger stand-in on its own thread and loop: verifies the bearer (RS256 against the tenant's
    JWKS found through OIDC discovery, v1 issuer, the fixture's calloutAudience, the expected appid), records every
    call and answers `status` after `delay` seconds."""

    thread_name = "em-receiver"

    def __init__(self, tenant: TenantServer):
        super().__init__()
        tid = tenant.state.tenant_id
        discovery = httpx.get(f"{tenant.url}/{tid}/v2.0/.well-known/openid-configuration").json()
        self.jwks = jwt.PyJWKSet.from_dict(httpx.get(discovery["jwks_uri"]).json())
        self.issuer = f"https://sts.windows.net/{tid}/"
        self.audience = tenant.state.tenant["calloutAudience"]
        self.app_id = EM_APP_ID
        self.status = 202
        self.delay = 0.0
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def verify(self, header: str) -> dict[str, Any]:
        if not header.startswith("Bearer "):
            raise jwt.InvalidTokenError("no bearer token")
        token = header[len("Bearer ") :]
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self.jwks.keys if k.key_id == kid), None)
        if key is None:
            raise jwt.InvalidTokenError(f"kid {kid} is not in the tenant's JWKS")
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
        if claims.get("appid") != self.app_id:
            raise jwt.InvalidTokenError(f"appid {claims.get('appid')} is not {self.app_id}")
        return claims

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            claims = self.verify(request.headers.get("Authorization", ""))
        except jwt.PyJWTError as exc:
            self.calls.append({"body": body, "claims": None, "error": str(exc)})
            return web.Response(status=401)
        self.calls.append({"body": body, "claims": claims, "error": None})
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, headers={"x-ms-workflow-run-id": "08584-run"})

    def bodies(self, stage: str) -> list[dict[str, Any]]:
        return [c["body"] for c in self.calls if c["body"].get("Stage") == stage]

    async def start_async(self) -> None:
        app = web.Application()
        app.router.add_post("/callout", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/callout"

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
def receiver(tenant_env: TenantServer) -> Any:
    with Receiver(tenant_env) as found:
        httpx.post(f"{tenant_env.url}/_control/em/extensions/url", json={"url": found.url}).raise_for_status()
        yield found


@pytest.fixture
async def control(tenant_env: TenantServer, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tenant_env.url, timeout=10) as client:
        yield client


# --- helpers ----------------------------------------------------------------------------------------------


async def until(probe: Callable[[], Awaitable[Any]], what: str, seconds: float = 5.0) -> Any:
    """Poll an async probe (callouts go out in the background) for at most `seconds`."""
    for _ in range(int(seconds / 0.02)):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def em_state(control: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await control.get(f"/_control/em/requests/{request_id}")
    response.raise_for_status()
    return response.json()


async def stage_callout(control: httpx.AsyncClient, request_id: str, stage: str, status: str) -> dict[str, Any]:
    async def probe():
        found = [c for c in (await em_state(control, request_id))["callouts"] if c["stage"] == stage]
        return found[-1] if found and found[-1]["status"] == status else None

    return await until(probe, f"the {stage} callout to be {status}")


async def request_in(control: httpx.AsyncClient, request_id: str, state: str) -> dict[str, Any]:
    async def probe():
        current = await em_state(control, request_id)
        return current if current["request"]["state"] == state else None

    return await until(probe, f"the request to be {state}")


async def received(receiver: Receiver, stage: str, count: int = 1) -> list[dict[str, Any]]:
    async def probe():
        bodies = receiver.bodies(stage)
        return bodies if len(bodies) >= count else None

    return await until(probe, f"{count} {stage} call(s) at the receiver")


async def submit(control: httpx.AsyncClient, **extra: Any) -> str:
    """Megan (Tom's manager) asks for the MFA reset package on Tom's behalf."""
    body = {"requestorId": F.U["megan"], "targetId": F.U["tom"], "accessPackageId": PACKAGE["id"], **extra}
    response = await control.post("/_control/em/requests", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def graph_token(client_id: str | None = None) -> str:
    async with ManagedIdentityCredential(client_id=client_id) as credential:
        return (await credential.get_token(GRAPH_SCOPE)).token


async def graph(
    tenant: TenantServer, method: str, path: str, *, client_id: str | None = None, token: str | None = None, **kw
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or await graph_token(client_id)}"}
    async with httpx.AsyncClient(base_url=tenant.graph_url, headers=headers, timeout=10) as client:
        return await client.request(method, EM_PATH + path, **kw)


def resume_body(stage: str, instance_id: str, state: str | None = None) -> dict[str, Any]:
    """The documented resume body (accesspackageassignmentrequest-resume)."""
    data: dict[str, Any] = {
        "@odata.type": CALLBACK_DATA,
        "stage": stage,
        "customExtensionStageInstanceId": instance_id,
        "customExtensionStageInstanceDetail": "conformance test",
    }
    if state is not None:
        data["state"] = state
    return {"source": "conformance", "type": STAGE_TYPE + stage, "data": data}


async def resume(tenant: TenantServer, request_id: str, body: dict[str, Any], token: str | None = None):
    return await graph(tenant, "POST", f"/assignmentRequests/{request_id}/resume", token=token, json=body)


def sdk_resume_body(stage: AccessPackageCustomExtensionStage, instance_id: str, state: str | None = None):
    return ResumePostRequestBody(
        source="conformance",
        type=STAGE_TYPE + stage.value,
        data=AccessPackageAssignmentRequestCallbackData(
            stage=stage,
            custom_extension_stage_instance_id=instance_id,
            custom_extension_stage_instance_detail="resumed by msgraph-sdk",
            state=state,
        ),
    )


async def pass_created(tenant: TenantServer, control: httpx.AsyncClient, request_id: str) -> None:
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    response = await resume(tenant, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    assert response.status_code == 204, response.text
    await request_in(control, request_id, "pendingApproval")


async def approve(control: httpx.AsyncClient, request_id: str, approver: str) -> httpx.Response:
    return await control.post(f"/_control/em/requests/{request_id}/approve", json={"approverId": approver})


async def to_granted(tenant: TenantServer, control: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """Created stage resumed, both approvals given: the request id and its waiting granted callout."""
    request_id = await submit(control)
    await pass_created(tenant, control, request_id)
    for approver in (F.U["megan"], F.U["sam"]):
        assert (await approve(control, request_id, approver)).status_code == 200
    return request_id, await stage_callout(control, request_id, GRANTED, "waitingForCallback")


def onboarding(tenant: TenantServer) -> list[str]:
    return tenant.state.groups[F.G["onboarding"]]["members"]


# --- the callout --------------------------------------------------------------------------------------------


async def test_the_created_callout_is_the_flat_pascalcase_logic_app_trigger_body(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    answers = [{"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "lost phone"}]
    request_id = await submit(control, justification="lost phone", answers=answers)
    [body] = await received(receiver, CREATED)
    assert "data" not in body  # not Graph's camelCase customExtensionCalloutRequest {source, type, data}
    assert "source" not in body
    assert body["AccessPackageAssignmentRequestId"] == request_id
    assert body["CallbackUriPath"] == f"{EM_PATH}/assignmentRequests/{request_id}/resume"
    instances = (await em_state(control, request_id))["callouts"]
    assert body["CustomExtensionStageInstanceId"] == instances[0]["customExtensionStageInstanceId"]
    assert (body["Stage"], body["RequestType"], body["State"]) == (CREATED, "onBehalfAdd", "submitted")
    assert isinstance(body["Status"], str)
    assert body["Answers"][0]["Value"] == "lost phone"
    assert body["CallbackConfiguration"] == {"DurationBeforeTimeout": "PT1H"}  # launch and wait
    assert body["AccessPackage"] == {
        "Id": PACKAGE["id"],
        "DisplayName": PACKAGE["displayName"],
        "Description": PACKAGE["description"],
    }
    assert body["AccessPackageCatalog"] == {
        "Id": CATALOG["id"],
        "DisplayName": CATALOG["displayName"],
        "Description": CATALOG["description"],
    }
    assert body["Assignment"]["Target"]["ObjectId"] == F.U["tom"]
    assert body["Assignment"]["AssignmentPolicy"]["Id"] == POLICY["id"]
    assert body["Requestor"]["ObjectId"] == F.U["megan"]


async def test_callouts_carry_an_em_bearer_that_verifies_against_the_tenant_jwks(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    await submit(control)
    await received(receiver, CREATED)
    [call] = receiver.calls
    assert call["error"] is None
    claims = call["claims"]
    assert claims["iss"] == f"https://sts.windows.net/{tenant_env.state.tenant_id}/"
    assert claims["aud"] == tenant_env.state.tenant["calloutAudience"]
    assert claims["appid"] == EM_APP_ID
    assert claims["tid"] == tenant_env.state.tenant_id


async def test_a_launch_and_wait_stage_leaves_the_instance_waiting_for_callback(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    await stage_callout(control, request_id, CREATED, "waitingForCallback")
    response = await graph(tenant_env, "GET", f"/assignmentRequests/{request_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "WaitingForCallback"  # the resume page: "requestStatus is WaitingForCallback"
    [instance] = body["customExtensionCalloutInstances"]
    assert (instance["status"], instance["customExtensionId"]) == ("waitingForCallback", EXT_WAIT)
    assert F.U["tom"] not in onboarding(tenant_env)


# --- resume -------------------------------------------------------------------------------------------------


def test_the_sdk_resume_body_serialises_to_the_documented_body():
    """msgraph-sdk's ResumePostRequestBody can express the documented body: no raw fallback is needed."""
    writer = JsonSerializationWriter()
    body = sdk_resume_body(AccessPackageCustomExtensionStage.AssignmentRequestCreated, "abc", "Denied")
    writer.write_object_value(None, body)
    sent = json.loads(writer.get_serialized_content())
    assert sent == {
        "source": "conformance",
        "type": STAGE_TYPE + CREATED,
        "data": {
            "@odata.type": "#" + CALLBACK_DATA,
            "stage": CREATED,
            "customExtensionStageInstanceId": "abc",
            "customExtensionStageInstanceDetail": "resumed by msgraph-sdk",
            "state": "Denied",
        },
    }


async def test_resume_through_the_typed_sdk_marks_the_instance_callback_received(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    requests = graph_client(tenant_env).identity_governance.entitlement_management.assignment_requests
    body = sdk_resume_body(
        AccessPackageCustomExtensionStage.AssignmentRequestCreated, created["customExtensionStageInstanceId"]
    )
    assert await requests.by_access_package_assignment_request_id(request_id).resume.post(body) is None  # 204
    done = await stage_callout(control, request_id, CREATED, "callbackReceived")
    assert done["detail"] == "resumed by msgraph-sdk"
    assert (await request_in(control, request_id, "pendingApproval"))["request"]["status"] != "WaitingForCallback"


async def test_resume_through_raw_http_answers_204_without_a_body(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    response = await resume(tenant_env, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    assert (response.status_code, response.content) == (204, b"")
    await stage_callout(control, request_id, CREATED, "callbackReceived")


async def test_the_full_path_from_created_to_granted_and_done(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    await pass_created(tenant_env, control, request_id)
    assert F.U["tom"] not in onboarding(tenant_env)
    assert receiver.bodies(APPROVED) == []  # nothing before the approvals
    assert (await approve(control, request_id, F.U["megan"])).status_code == 200  # stage 1: Tom's manager
    assert (await em_state(control, request_id))["request"]["state"] == "pendingApproval"
    assert (await approve(control, request_id, F.U["sam"])).status_code == 200  # stage 2: IT Security approvers
    [approved] = await received(receiver, APPROVED)
    assert "CallbackConfiguration" not in approved  # launch and continue
    granted = await stage_callout(control, request_id, GRANTED, "waitingForCallback")
    current = await em_state(control, request_id)
    assert [c["status"] for c in current["callouts"] if c["stage"] == APPROVED] == ["calloutSent"]  # not waiting
    assert current["request"]["state"] == "delivered"
    assert current["assignment"]["state"] == "delivered"
    assert F.U["tom"] in onboarding(tenant_env)
    [granted_body] = receiver.bodies(GRANTED)
    assert granted_body["CallbackConfiguration"] == {"DurationBeforeTimeout": "PT1H"}
    assert granted_body["State"] == "delivered"
    response = await resume(tenant_env, request_id, resume_body(GRANTED, granted["customExtensionStageInstanceId"]))
    assert response.status_code == 204
    await stage_callout(control, request_id, GRANTED, "callbackReceived")
    done = (await graph(tenant_env, "GET", f"/assignmentRequests/{request_id}")).json()
    assert (done["state"], done["status"]) == ("delivered", "Delivered")
    assert [c["body"]["Stage"] for c in receiver.calls] == [CREATED, APPROVED, GRANTED]


async def test_a_wrong_stage_instance_id_is_400_and_changes_nothing(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    await stage_callout(control, request_id, CREATED, "waitingForCallback")
    before = await em_state(control, request_id)
    body = resume_body(CREATED, "00000000-dead-4000-8000-000000000000")
    response = await resume(tenant_env, request_id, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"]
    await asyncio.sleep(0.1)  # give a wrongly spawned advance the chance to show
    assert await em_state(control, request_id) == before
    assert len(receiver.calls) == 1


async def test_denied_at_created_denies_the_request_with_no_access_and_no_further_callouts(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    body = resume_body(CREATED, created["customExtensionStageInstanceId"], "Denied")
    assert (await resume(tenant_env, request_id, body)).status_code == 204
    denied = await request_in(control, request_id, "denied")
    assert denied["request"]["status"] == "Denied"
    assert denied["assignment"]["state"] != "delivered"
    assert (await approve(control, request_id, F.U["megan"])).status_code == 400  # nothing left to approve
    await asyncio.sleep(0.1)
    assert F.U["tom"] not in onboarding(tenant_env)
    assert [c["body"]["Stage"] for c in receiver.calls] == [CREATED]


async def test_denied_at_granted_is_400_and_the_access_stays(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id, granted = await to_granted(tenant_env, control)
    body = resume_body(GRANTED, granted["customExtensionStageInstanceId"], "Denied")
    assert (await resume(tenant_env, request_id, body)).status_code == 400
    current = await em_state(control, request_id)
    assert current["request"]["state"] == "delivered"
    assert current["callouts"][-1]["status"] == "waitingForCallback"
    assert F.U["tom"] in onboarding(tenant_env)


async def test_a_state_other_than_denied_is_400_since_an_extension_cannot_approve(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    for state in ("Approved", "Delivered", "granted"):
        body = resume_body(CREATED, created["customExtensionStageInstanceId"], state)
        assert (await resume(tenant_env, request_id, body)).status_code == 400, state
    current = await em_state(control, request_id)
    assert (current["request"]["state"], current["callouts"][0]["status"]) == ("submitted", "waitingForCallback")


# --- approvals --------------------------------------------------------------------------------------------


async def test_an_approver_not_valid_for_the_stage_is_403_from_the_control_api(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    await pass_created(tenant_env, control, request_id)
    # Stage 1 is the target's manager (Megan): not the security group, not the target, not Megan's own manager.
    for approver in ("sam", "tom", "dana"):
        assert (await approve(control, request_id, F.U[approver])).status_code == 403, approver
    assert (await em_state(control, request_id))["approvals"] == []
    assert (await approve(control, request_id, F.U["megan"])).status_code == 200
    # Stage 2 is IT Security approvers (Sam, Hank): the manager is not one of them.
    for approver in ("megan", "tom"):
        assert (await approve(control, request_id, F.U[approver])).status_code == 403, approver
    current = await em_state(control, request_id)
    assert current["request"]["state"] == "pendingApproval"
    assert [a["approverId"] for a in current["approvals"]] == [F.U["megan"]]


# --- failures and time ------------------------------------------------------------------------------------


async def test_a_callout_slower_than_its_timeout_is_tried_twice_then_fails(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    engine(tenant_env.state).extensions[EXT_WAIT]["clientConfiguration"] = {
        "@odata.type": "#microsoft.graph.customExtensionClientConfiguration",
        "timeoutInMilliseconds": 200,
        "maximumRetries": 1,
    }
    receiver.delay = 0.6
    request_id = await submit(control)
    failed = await stage_callout(control, request_id, CREATED, "calloutFailed")
    assert failed["attempts"] == 2
    assert len(receiver.bodies(CREATED)) == 2
    # Both attempts carry the same stage instance.
    assert {b["CustomExtensionStageInstanceId"] for b in receiver.bodies(CREATED)} == {
        failed["customExtensionStageInstanceId"]
    }
    current = await em_state(control, request_id)
    assert current["request"]["state"] not in ("pendingApproval", "delivered")
    assert F.U["tom"] not in onboarding(tenant_env)


async def test_a_500_from_the_extension_is_retried_once_then_the_callout_fails(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    receiver.status = 500
    request_id = await submit(control)
    failed = await stage_callout(control, request_id, CREATED, "calloutFailed")
    assert (failed["attempts"], failed["lastHttpStatus"]) == (2, 500)
    assert (await em_state(control, request_id))["request"]["state"] != "pendingApproval"


async def test_a_callback_that_never_comes_times_out_after_the_clock_passes_the_wait(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    assert (await control.post("/_control/em/tick")).json()["timedOut"] == 0
    (await control.post("/_control/clock", json={"advanceSeconds": 7200})).raise_for_status()
    assert (await control.post("/_control/em/tick")).json()["timedOut"] == 1
    current = await em_state(control, request_id)
    assert current["callouts"][0]["status"] == "callbackTimedOut"
    assert current["request"]["state"] not in ("submitted", "pendingApproval", "delivered")
    # A token minted now (tenant clock) for the late resume: the earlier one has expired with the clock.
    late = await resume(tenant_env, request_id, resume_body(CREATED, created["customExtensionStageInstanceId"]))
    assert late.status_code == 400
    assert F.U["tom"] not in onboarding(tenant_env)


# --- removal ------------------------------------------------------------------------------------------------


async def test_admin_remove_through_graph_takes_the_target_out_and_calls_out_removed(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id, _ = await to_granted(tenant_env, control)
    assignment_id = (await em_state(control, request_id))["assignment"]["id"]
    assert F.U["tom"] in onboarding(tenant_env)
    body = {"requestType": "adminRemove", "assignment": {"id": assignment_id}}
    response = await graph(tenant_env, "POST", "/assignmentRequests", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["requestType"] == "adminRemove"
    [removed] = await received(receiver, REMOVED)
    assert removed["AccessPackageAssignmentRequestId"] == response.json()["id"]
    assert removed["RequestType"] == "adminRemove"
    assert removed["Assignment"]["Id"] == assignment_id
    assert "CallbackConfiguration" not in removed  # the removed stage is launch and continue here
    assert F.U["tom"] not in onboarding(tenant_env)
    after = (await graph(tenant_env, "GET", f"/assignments/{assignment_id}")).json()
    assert after["state"] == "expired"


async def test_an_assignment_expires_after_the_policys_eight_hours_on_tick(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id, granted = await to_granted(tenant_env, control)
    body = resume_body(GRANTED, granted["customExtensionStageInstanceId"])
    assert (await resume(tenant_env, request_id, body)).status_code == 204
    (await control.post("/_control/clock", json={"advanceSeconds": 7 * 3600})).raise_for_status()
    assert (await control.post("/_control/em/tick")).json()["expired"] == 0
    assert F.U["tom"] in onboarding(tenant_env)
    (await control.post("/_control/clock", json={"advanceSeconds": 3600 + 5})).raise_for_status()
    assert (await control.post("/_control/em/tick")).json()["expired"] == 1
    [removed] = await received(receiver, REMOVED)
    assert removed["RequestType"] == "systemRemove"
    assert removed["Assignment"]["Target"]["ObjectId"] == F.U["tom"]
    assert F.U["tom"] not in onboarding(tenant_env)


# --- extensions, reads, permissions, identity --------------------------------------------------------------


async def test_registering_an_extension_sends_a_connection_test_to_the_receiver(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    extension = next(e for e in FIXTURE_EM["customExtensions"] if e["id"] == EXT_CONTINUE)
    extension.pop("id")
    extension["displayName"] = "Registered by the conformance test"
    extension["endpointConfiguration"]["url"] = receiver.url
    response = await control.post("/_control/em/extensions", json=extension)
    assert response.status_code == 201
    [test_call] = await received(receiver, CONNECTION_TEST)
    assert test_call["AccessPackageCatalog"]["Id"] == CATALOG["id"]
    assert receiver.calls[-1]["error"] is None  # signed like any callout


async def test_get_with_expand_returns_the_requestor_and_the_assignment_target(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    await stage_callout(control, request_id, CREATED, "waitingForCallback")
    expand = {"$expand": "requestor,accessPackage,assignment($expand=target)"}
    response = await graph(tenant_env, "GET", f"/assignmentRequests/{request_id}", params=expand)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requestor"]["objectId"] == F.U["megan"]
    assert body["accessPackage"]["id"] == PACKAGE["id"]
    assert body["assignment"]["target"]["objectId"] == F.U["tom"]
    assert body["assignment"]["target"]["displayName"] == "Tom Target"
    plain = (await graph(tenant_env, "GET", f"/assignmentRequests/{request_id}")).json()
    assert not {"requestor", "accessPackage", "assignment"} & set(plain)  # navigation only when expanded


async def test_the_limited_identity_gets_403_for_reads_and_resume(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    request_id = await submit(control)
    created = await stage_callout(control, request_id, CREATED, "waitingForCallback")
    limited = F.APP["limited"][0]
    read = await graph(tenant_env, "GET", f"/assignmentRequests/{request_id}", client_id=limited)
    assert read.status_code == 403
    assert read.json()["error"]["code"] == "Authorization_RequestDenied"
    requests = graph_client(tenant_env, client_id=limited).identity_governance.entitlement_management
    body = sdk_resume_body(
        AccessPackageCustomExtensionStage.AssignmentRequestCreated, created["customExtensionStageInstanceId"]
    )
    with pytest.raises(ODataError) as refused:
        await requests.assignment_requests.by_access_package_assignment_request_id(request_id).resume.post(body)
    assert refused.value.response_status_code == 403
    assert (await em_state(control, request_id))["callouts"][0]["status"] == "waitingForCallback"


async def test_a_relay_identity_signs_callouts_with_its_own_appid(
    tenant_env: TenantServer, control: httpx.AsyncClient, receiver: Receiver
):
    relay = F.APP["relay"][0]
    (await control.post("/_control/em/relay", json={"appId": relay})).raise_for_status()
    receiver.app_id = relay
    request_id = await submit(control)
    await stage_callout(control, request_id, CREATED, "waitingForCallback")
    [call] = receiver.calls
    assert call["error"] is None
    assert call["claims"]["appid"] == relay
    assert call["claims"]["aud"] == tenant_env.state.tenant["calloutAudience"]
