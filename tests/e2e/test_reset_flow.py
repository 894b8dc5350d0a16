"""An MFA reset walked through every stage: My Access request → guardrails → approvals → grant → reset."""

from __future__ import annotations

from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.stack import wait_until

PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"


def test_a_managers_request_for_a_report_resets_every_method_but_the_password(stack: Stack):
    tom = stack.tenant.state.users[F.U["tom"]]
    assert len(tom["methods"]) > 5
    request_id = stack.em.submit(F.U["megan"], F.U["tom"], justification="lost phone")

    created = stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    assert "waiting for approval" in (created["detail"] or "")
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.approve(request_id, F.U["megan"])
    stack.em.approve(request_id, F.U["sam"])

    granted = stack.em.wait_stage_status(request_id, "assignmentRequestGranted", {"callbackReceived"}, seconds=45)
    assert "removed" in granted["detail"], granted["detail"]
    assert [m["@odata.type"] for m in tom["methods"]] == [PASSWORD], granted["detail"]
    assert tom.get("signInSessionsValidFromDateTime")
    assert F.U["tom"] in stack.tenant.state.groups[F.G["onboarding"]]["members"]
    container = stack.container()
    reset = stack.host.call(container.resets.get(request_id))
    assert reset is not None
    assert reset.pickup_id
    pickup = stack.host.call(container.pickups.get(reset.pickup_id))
    assert pickup.deliverer_id == F.U["megan"]
    assert pickup.state == "open"
    kinds = [e.kind for e in container.notifier.events]
    assert kinds == ["requested", "approved", "pickupReady"]


def test_a_request_by_someone_who_is_not_the_manager_is_denied_with_a_reason(stack: Stack):
    request_id = stack.em.submit(F.U["hank"], F.U["tom"])
    created = stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    assert "Only the target's manager" in created["detail"]
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "denied", "the request to be denied")
    assert len(stack.tenant.state.users[F.U["tom"]]["methods"]) > 5


def test_two_requests_for_one_user_at_the_same_moment_open_one_reset(stack: Stack):
    """The worker decides both at once; the one-open-reset rule still holds: one passes, the other is denied."""
    requests = [stack.em.submit(F.U["megan"], F.U["tom"]) for _ in range(2)]
    details = [
        stack.em.wait_stage_status(r, "assignmentRequestCreated", {"callbackReceived"})["detail"] or ""
        for r in requests
    ]
    assert sorted("waiting for approval" in d for d in details) == [False, True], details
    assert any("still open" in d for d in details), details


def test_a_request_denied_by_an_approver_does_not_block_the_next_one(stack: Stack):
    """EM calls no further stage after a denial; the next request for the user closes the ended reset and passes."""
    first = stack.em.submit(F.U["megan"], F.U["tom"])
    stack.em.wait_stage_status(first, "assignmentRequestCreated", {"callbackReceived"})
    wait_until(lambda: stack.em.state(first)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.deny(first, F.U["megan"])
    wait_until(lambda: stack.em.state(first)["request"]["state"] == "denied", "the approver's denial")
    second = stack.em.submit(F.U["megan"], F.U["tom"])
    created = stack.em.wait_stage_status(second, "assignmentRequestCreated", {"callbackReceived"})
    assert "waiting for approval" in (created["detail"] or ""), created["detail"]
    ended = stack.host.call(stack.container().resets.get(first))
    assert ended.state == "closed"
    assert "denied" in ended.detail


def _graph_token(stack: Stack) -> str:
    from local.tenant.auth import app_token

    state = stack.tenant.state
    return app_token(state, state.applications[F.APP["func"][0]], "https://graph.microsoft.com")


def test_removing_the_assignment_deletes_the_pass_and_closes_the_pickup(stack: Stack):
    import httpx

    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.approve(request_id, F.U["megan"])
    stack.em.approve(request_id, F.U["sam"])
    stack.em.wait_stage_status(request_id, "assignmentRequestGranted", {"callbackReceived"}, seconds=45)
    headers = {"Authorization": f"Bearer {_graph_token(stack)}"}
    base = stack.tenant.graph_url
    created = httpx.post(
        f"{base}/users/{F.U['tom']}/authentication/temporaryAccessPassMethods", json={}, headers=headers
    )
    assert created.status_code == 201
    assignment_id = stack.em.state(request_id)["assignment"]["id"]
    removal = httpx.post(
        f"{base}/identityGovernance/entitlementManagement/assignmentRequests",
        json={"requestType": "adminRemove", "assignment": {"id": assignment_id}},
        headers=headers,
    )
    assert removal.status_code == 201
    tom = stack.tenant.state.users[F.U["tom"]]
    wait_until(lambda: [m["@odata.type"] for m in tom["methods"]] == [PASSWORD], "the pass to be deleted")
    container = stack.container()

    def closed():
        pickup = stack.host.call(container.pickups.for_request(request_id))
        return pickup is not None and pickup.state == "closed"

    wait_until(closed, "the pickup to close")
    assert F.U["tom"] not in stack.tenant.state.groups[F.G["onboarding"]]["members"]


def test_a_package_not_configured_for_mfa_reset_is_resumed_untouched(stack: Stack, monkeypatch):
    from extensions import container as product_container
    from extensions.settings import get_settings

    monkeypatch.setenv("MFA_RESET_PACKAGE_IDS", "00000000-0000-4000-8000-00000000beef")
    get_settings.cache_clear()
    product_container.use_container(None)
    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    created = stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    assert "not configured for MFA reset" in created["detail"]
    assert len(stack.tenant.state.users[F.U["tom"]]["methods"]) > 5


def test_a_callout_that_disagrees_with_graph_fails_loudly_and_changes_nothing(stack: Stack):
    import uuid

    import httpx

    from tests.extensions.tokens import genuine

    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    created = stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    forged = dict(created["sentBody"])
    forged["CustomExtensionStageInstanceId"] = str(uuid.uuid4())
    forged["Assignment"] = {**forged["Assignment"], "Target": {"ObjectId": F.U["lena"], "DisplayName": "Lena"}}
    answer = httpx.post(
        f"{stack.host.url}/api/callout", json=forged, headers={"Authorization": f"Bearer {genuine(stack.tenant)}"}
    )
    assert answer.status_code == 202
    container = stack.container()
    wait_until(lambda: any(e.kind == "failure" for e in container.notifier.events), "the failure alert")
    trail = stack.host.call(container.resets.audit_trail(request_id))
    failed = [row for row in trail if row["Event"] == "failed"]
    assert "disagrees with Graph about the target" in failed[0]["Detail"]
    assert len(stack.tenant.state.users[F.U["lena"]]["methods"]) > 1


def test_a_missing_graph_permission_is_a_permanent_failure_that_is_audited_and_alerted(stack: Stack, monkeypatch):
    from extensions import container as product_container
    from extensions.settings import get_settings

    monkeypatch.setenv("MANAGED_IDENTITY_CLIENT_ID", F.APP["limited"][0])  # holds User.Read.All only
    get_settings.cache_clear()
    product_container.use_container(None)
    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"waitingForCallback"})
    wait_until(lambda: product_container._container is not None, "the worker to build its container")
    container = product_container._container
    wait_until(lambda: any(e.kind == "failure" for e in container.notifier.events), "the failure alert")
    trail = stack.host.call(container.resets.audit_trail(request_id))
    assert "Authorization_RequestDenied" in next(row for row in trail if row["Event"] == "failed")["Detail"]
    assert len(stack.tenant.state.users[F.U["tom"]]["methods"]) > 5
