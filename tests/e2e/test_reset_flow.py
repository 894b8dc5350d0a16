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
