"""The callout function: parses both body shapes, records once per stage instance, queues, answers 202."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from extensions.callout import callout
from extensions.container import Container, use_container
from extensions.settings import Settings
from local.tenant import EM_APP_ID, TenantServer
from store.callouts import CalloutKey
from tests.extensions.tokens import AUDIENCE, FORGERIES, forged, genuine

CALL = callout.build().get_user_function()


def flat_body(request_id: str, instance_id: str, stage: str = "assignmentRequestCreated") -> dict:
    """The flat PascalCase body EM's Logic App trigger documents."""
    return {
        "AccessPackageAssignmentRequestId": request_id,
        "CallbackUriPath": f"/identityGovernance/entitlementManagement/assignmentRequests/{request_id}/resume",
        "CustomExtensionStageInstanceId": instance_id,
        "Stage": stage,
        "RequestType": "OnBehalfAdd",
        "State": "Submitted",
        "Status": "Accepted",
        "AccessPackage": {"Id": str(uuid.uuid4()), "DisplayName": "MFA reset"},
        "Assignment": {"Id": str(uuid.uuid4()), "Target": {"ObjectId": str(uuid.uuid4()), "DisplayName": "Tom"}},
        "Requestor": {"ObjectId": str(uuid.uuid4()), "DisplayName": "Megan"},
        "SomethingNew": {"Ignored": True},
    }


def post(body: bytes, token: str | None = None) -> func.HttpRequest:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return func.HttpRequest("POST", "http://localhost/api/callout", body=body, headers=headers)


@pytest.fixture
def send(tenant: TenantServer):
    """Posts a body to the callout function with a genuine EM token from the local tenant."""

    async def _send(body: bytes) -> func.HttpResponse:
        return await CALL(post(body, genuine(tenant)))

    return _send


@pytest.fixture
async def container(azurite, tenant: TenantServer) -> AsyncIterator[Container]:
    """A container on Azurite (fresh table and queue per test) that trusts the local tenant's EM tokens."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        AzureWebJobsStorage=azurite.connection_string,
        WORK_QUEUE_NAME=f"work-{suffix}",
        TABLE_PREFIX=f"t{suffix}",
        TENANT_ID=tenant.state.tenant_id,
        AUTHORITY_HOST=tenant.url,
        CALLOUT_AUDIENCE=AUDIENCE,
        CALLOUT_ALLOWED_CALLERS=EM_APP_ID,
    )
    built = Container.from_settings(settings)
    use_container(built)
    yield built
    use_container(None)
    await built.close()


async def queued(container: Container, azurite) -> list[dict]:
    async with QueueClient.from_connection_string(azurite.connection_string, container.settings.work_queue) as queue:
        try:
            messages = await queue.peek_messages(max_messages=32)
        except ResourceNotFoundError:  # nothing was ever queued
            return []
    return [json.loads(base64.b64decode(m.content)) for m in messages]


async def test_a_flat_pascalcase_callout_is_recorded_queued_and_answered_202(container: Container, azurite, send):
    request_id, instance_id = str(uuid.uuid4()), str(uuid.uuid4())
    response = await send(json.dumps(flat_body(request_id, instance_id)).encode())
    assert response.status_code == 202
    await container.callouts.flush()
    record = await container.callouts.get(CalloutKey(request_id, "assignmentRequestCreated", instance_id))
    assert record is not None
    assert record["Enqueued"] is True
    assert await queued(container, azurite) == [
        {"requestId": request_id, "stage": "assignmentRequestCreated", "stageInstanceId": instance_id}
    ]


async def test_a_repeated_callout_answers_202_without_a_second_message(container: Container, azurite, send):
    body = json.dumps(flat_body(str(uuid.uuid4()), str(uuid.uuid4()))).encode()
    first = await send(body)
    await container.callouts.flush()
    second = await send(body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert json.loads(second.get_body())["status"] == "duplicate"
    assert len(await queued(container, azurite)) == 1


async def test_the_graph_envelope_in_camelcase_is_accepted(container: Container, azurite, send):
    request_id, instance_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = {
        "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestGranted",
        "source": "/IdentityGovernance/EntitlementManagement/AccessPackageAssignmentRequests",
        "data": {
            "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCalloutData",
            "stage": "assignmentRequestGranted",
            "customExtensionStageInstanceId": instance_id,
            "accessPackageAssignmentRequestId": request_id,
        },
    }
    response = await send(json.dumps(envelope).encode())
    assert response.status_code == 202
    assert await container.callouts.get(CalloutKey(request_id, "assignmentRequestGranted", instance_id))


async def test_the_connection_test_succeeds_without_recording_anything(container: Container, azurite, send):
    response = await send(json.dumps({"Stage": "CustomExtensionConnectionTest"}).encode())
    assert response.status_code == 202
    assert await queued(container, azurite) == []


def _body_with(**changes) -> bytes:
    body = flat_body(str(uuid.uuid4()), str(uuid.uuid4()))
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"", "JSON object"),
        (b"null", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"Stage": ""}).encode(), "stage"),
        (_body_with(Stage="assignmentRequestExploded"), "unknown stage"),
        (_body_with(Stage=123), "stage"),
        (_body_with(AccessPackageAssignmentRequestId=None), "AccessPackageAssignmentRequestId"),
        (_body_with(CustomExtensionStageInstanceId=None), "CustomExtensionStageInstanceId"),
        (_body_with(AccessPackageAssignmentRequestId="../../users/x"), "accesspackageassignmentrequestid"),
        (_body_with(AccessPackage="MFA reset"), "accesspackage"),
        (_body_with(Requestor={"ObjectId": "' or 1 eq 1"}), "requestor.objectid"),
        (_body_with(Assignment=[1, 2]), "assignment"),
    ],
)
async def test_an_invalid_body_gets_400_saying_what_is_wrong(
    container: Container, azurite, send, body: bytes, says: str
):
    response = await send(body)
    assert response.status_code == 400
    assert says in json.loads(response.get_body())["error"]["message"]
    assert await queued(container, azurite) == []


async def test_an_oversized_body_is_refused_with_413(container: Container, azurite, send):
    big = json.dumps({**flat_body(str(uuid.uuid4()), str(uuid.uuid4())), "Pad": "x" * 1_000_000}).encode()
    response = await send(big)
    assert response.status_code == 413
    assert await queued(container, azurite) == []


@pytest.mark.parametrize("case", FORGERIES)
async def test_a_forged_token_gets_401_and_nothing_is_recorded_or_queued(
    container: Container, azurite, tenant: TenantServer, case: str
):
    request_id, instance_id = str(uuid.uuid4()), str(uuid.uuid4())
    response = await CALL(post(json.dumps(flat_body(request_id, instance_id)).encode(), forged(tenant, case)))
    assert response.status_code == 401
    assert json.loads(response.get_body())["error"]["code"] == "unauthorized"
    assert await container.callouts.get(CalloutKey(request_id, "assignmentRequestCreated", instance_id)) is None
    assert await queued(container, azurite) == []


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt"])
async def test_a_missing_or_malformed_authorization_header_gets_401(container: Container, azurite, authorization):
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = json.dumps(flat_body(str(uuid.uuid4()), str(uuid.uuid4()))).encode()
    response = await CALL(func.HttpRequest("POST", "http://localhost/api/callout", body=body, headers=headers))
    assert response.status_code == 401
    assert await queued(container, azurite) == []


async def test_the_token_is_checked_before_the_body_is_looked_at(container: Container, azurite, tenant):
    response = await CALL(post(b"{not json", forged(tenant, "expired")))
    assert response.status_code == 401
