"""The new-hire onboarding package end to end: no method is deleted, the manager picks up a multi-use pass, and the
same sweep ends onboarding once the new hire's first passkey appears; a user who already has MFA is denied."""

from __future__ import annotations

import pytest

from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.e2e.test_pickup_page import browser, nonce_of, reveal
from tests.e2e.test_sweep import TAP, events, in_onboarding_group, methods_of, register_passkey, run_sweep, trail
from tests.stack import wait_until

ONBOARDING = F.oid("dddddddd", 2)
CREATED, GRANTED = "assignmentRequestCreated", "assignmentRequestGranted"


@pytest.fixture(autouse=True)
def _onboarding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_PACKAGE_IDS", ONBOARDING)
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")


def test_a_new_hire_is_onboarded_without_deleting_anything_and_leaves_the_group_after_a_passkey(stack: Stack):
    """Nora's manager gets a pickup, Nora keeps what she had, and her first passkey ends onboarding."""
    before = methods_of(stack, "nora")
    request_id = stack.em.submit(F.U["megan"], F.U["nora"], package=ONBOARDING, justification="starts Monday")
    stack.em.wait_stage_status(request_id, CREATED, {"callbackReceived"})
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.approve(request_id, F.U["sam"])
    granted = stack.em.wait_stage_status(request_id, GRANTED, {"callbackReceived"}, seconds=45)
    assert "New-hire onboarding" in granted["detail"]
    assert methods_of(stack, "nora") == before
    assert in_onboarding_group(stack, "nora")
    assert "methodsDeleted" not in trail(stack, request_id)

    reset = stack.host.call(stack.container().resets.get(request_id))
    megan = browser(stack, "megan")
    shown = reveal(megan, reset.pickup_id, nonce_of(megan.get(f"/api/pickup/{reset.pickup_id}")))
    assert shown.status_code == 200, shown.text
    issued = stack.tenant.state.users[F.U["nora"]]["methods"][-1]
    assert issued["isUsableOnce"] is False  # multi-use: Nora may need several sign-ins to set up

    register_passkey(stack, "nora")
    run_sweep(stack)
    wait_until(lambda: not in_onboarding_group(stack, "nora"), "Nora out of the onboarding group")
    assert TAP not in methods_of(stack, "nora")
    [done] = events(stack, "completed")
    assert done.target_id == F.U["nora"]


def test_onboarding_a_user_who_already_has_mfa_is_denied(stack: Stack):
    """Lena holds Windows Hello and Authenticator: the onboarding request is denied and nothing changes."""
    before = methods_of(stack, "lena")
    request_id = stack.em.submit(F.U["megan"], F.U["lena"], package=ONBOARDING)
    stack.em.wait_stage_status(request_id, CREATED, {"callbackReceived"})
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "denied", "the request denied")
    [created] = stack.em.callouts(request_id, CREATED)
    assert "already has MFA methods registered" in created["detail"]
    assert "windowsHelloForBusiness" in created["detail"]
    assert methods_of(stack, "lena") == before
    assert not in_onboarding_group(stack, "lena")
