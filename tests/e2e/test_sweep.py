"""The completion sweep end to end: a real reset and reveal, the user registers a passkey in the local tenant, the
sweep timer (run through the dev host's admin API) deletes the pass and has EM remove the onboarding assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from extensions.sweep_timer import sweep_for
from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.e2e.test_pickup_page import browser, nonce_of, open_pickup, reveal
from tests.stack import wait_until

TAP = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
FIDO2 = "#microsoft.graph.fido2AuthenticationMethod"
REQUESTS = "/identityGovernance/entitlementManagement/assignmentRequests"


@pytest.fixture(autouse=True)
def _easy_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")


def run_sweep(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.host.url}/admin/functions/sweep_timer", json={"input": ""}, headers={"x-functions-key": "e2e-key"}
    )
    assert response.status_code == 202, response.text


def reset_and_reveal(stack: Stack) -> tuple[str, str]:
    request_id, pickup_id = open_pickup(stack)
    megan = browser(stack, "megan")
    shown = reveal(megan, pickup_id, nonce_of(megan.get(f"/api/pickup/{pickup_id}")))
    assert shown.status_code == 200, shown.text
    return request_id, pickup_id


def register_passkey(stack: Stack, user: str = "tom", **body) -> dict:
    response = httpx.post(f"{stack.tenant.url}/_control/users/{F.U[user]}/passkey", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def methods_of(stack: Stack, user: str = "tom") -> list[str]:
    return [m["@odata.type"] for m in stack.tenant.state.users[F.U[user]]["methods"]]


def in_onboarding_group(stack: Stack, user: str = "tom") -> bool:
    return F.U[user] in stack.tenant.state.groups[F.G["onboarding"]]["members"]


def assignment_state(stack: Stack, request_id: str) -> str:
    return stack.em.state(request_id)["assignment"]["state"]


def removals(stack: Stack) -> list[dict]:
    requests = stack.tenant.state.extras["em"].requests.values()
    return [r for r in requests if r["requestType"] == "adminRemove"]


def events(stack: Stack, kind: str) -> list:
    return [e for e in stack.container().notifier.events if e.kind == kind]


def trail(stack: Stack, request_id: str) -> list[str]:
    return [row["Event"] for row in stack.host.call(stack.container().resets.audit_trail(request_id))]


def test_a_passkey_registered_after_the_reveal_completes_onboarding(stack: Stack):
    """Reset → reveal → passkey → sweep: the pass is deleted, EM removes the assignment, the group membership goes."""
    request_id, pickup_id = reset_and_reveal(stack)
    assert TAP in methods_of(stack)
    assert in_onboarding_group(stack)

    run_sweep(stack)  # no passkey yet: nothing happens
    assert TAP in methods_of(stack)
    assert assignment_state(stack, request_id) == "delivered"

    register_passkey(stack, kind="authenticator")  # a passkey in Microsoft Authenticator counts
    run_sweep(stack)

    assert TAP not in methods_of(stack)
    wait_until(lambda: assignment_state(stack, request_id) == "expired", "the assignment removed")
    assert not in_onboarding_group(stack)
    [removal] = removals(stack)
    assert removal["_assignmentId"] == stack.em.state(request_id)["assignment"]["id"]
    reset = stack.host.call(stack.container().resets.get(request_id))
    assert reset.state == "completed"
    pickup = stack.host.call(stack.container().pickups.get(pickup_id))
    assert pickup.state == "closed"
    [done] = events(stack, "completed")
    assert done.manager_id == F.U["megan"]
    assert "Microsoft Authenticator" in done.detail
    assert {"completed", "removalRequested", "passDeleted"} <= set(trail(stack, request_id))
    # The removed stage that EM runs next is recorded on the reset, without a second announcement.
    wait_until(lambda: "assignmentRemoved" in trail(stack, request_id), "the removed stage handled")
    assert events(stack, "removed") == []


def test_a_second_sweep_changes_nothing(stack: Stack):
    """After a completion, sweeping again (and replaying the stale pickup) writes, removes and notifies nothing."""
    request_id, pickup_id = reset_and_reveal(stack)
    container = stack.container()
    stale = stack.host.call(container.pickups.get(pickup_id))
    register_passkey(stack)
    run_sweep(stack)
    wait_until(lambda: "assignmentRemoved" in trail(stack, request_id), "EM's removal recorded")

    before = (trail(stack, request_id), len(container.notifier.events), len(removals(stack)), methods_of(stack))
    httpx.delete(f"{stack.tenant.url}/_control/requests").raise_for_status()
    run_sweep(stack)
    assert stack.host.call(sweep_for(container).visit(stale)) == "completed"  # every step is already checkpointed
    after = (trail(stack, request_id), len(container.notifier.events), len(removals(stack)), methods_of(stack))
    assert after == before
    writes = httpx.get(f"{stack.tenant.url}/_control/requests").json()
    assert [w for w in writes if w["method"] in ("POST", "DELETE", "PATCH")] == []


@pytest.fixture
def keep_fido2(monkeypatch: pytest.MonkeyPatch) -> None:
    """This run's resets leave security keys alone (set before the stack fixture builds the host)."""
    monkeypatch.setenv("RESET_METHOD_TYPES", "phone,email,microsoftAuthenticator,softwareOath,temporaryAccessPass")


def test_a_passkey_that_existed_before_the_reset_does_not_count(keep_fido2, stack: Stack):
    """A reset that keeps Tom's old security key does not complete on it; a new passkey completes it."""
    request_id, _ = reset_and_reveal(stack)
    assert FIDO2 in methods_of(stack)  # the 2025 YubiKey survived the reset
    run_sweep(stack)
    assert TAP in methods_of(stack)
    assert assignment_state(stack, request_id) == "delivered"
    assert in_onboarding_group(stack)
    assert events(stack, "completed") == []

    register_passkey(stack, displayName="New YubiKey")
    run_sweep(stack)
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")
    assert TAP not in methods_of(stack)


def test_an_unrevealed_pickup_expires_and_is_reported(stack: Stack):
    """A pickup nobody revealed within its lifetime is expired, reported to the manager, and the access removed."""
    request_id, pickup_id = open_pickup(stack)
    container = stack.container()
    sweep = sweep_for(container)
    assert stack.host.call(sweep.run()).outcomes["waiting"] == 1  # still inside its lifetime

    later = datetime.now(UTC) + timedelta(hours=container.settings.pickup_lifetime_hours, minutes=1)
    sweep.clock = lambda: later
    assert stack.host.call(sweep.run()).outcomes["expired"] == 1

    pickup = stack.host.call(container.pickups.get(pickup_id))
    assert pickup.state == "expired"
    assert stack.host.call(container.resets.get(request_id)).state == "expired"
    [expired] = events(stack, "expired")
    assert expired.manager_id == F.U["megan"]
    assert "never picked up" in expired.detail
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")
    assert assignment_state(stack, request_id) == "expired"
    assert "pickupExpired" in trail(stack, request_id)
    assert stack.host.call(sweep.run()).visited == 0  # gone from the working set
    assert len(events(stack, "expired")) == 1


def test_a_used_one_time_pass_is_deleted_and_the_reset_closed_an_hour_later_without_a_passkey(stack: Stack):
    """A one-time pass we minted that the user has used is deleted; the sweep waits an hour for the passkey the user
    may be registering in that session, then closes the reset like an expired pass."""
    stack.tenant.state.policies["temporaryAccessPass"]["isUsableOnce"] = True
    request_id, _ = reset_and_reveal(stack)
    httpx.post(f"{stack.tenant.url}/_control/users/{F.U['tom']}/tap/use").raise_for_status()
    run_sweep(stack)
    assert TAP not in methods_of(stack)
    assert "passDeleted" in trail(stack, request_id)
    assert assignment_state(stack, request_id) == "delivered"  # still waiting for the passkey

    # An hour after the use, the session that pass opened is over: with no passkey the reset cannot finish.
    sweep = sweep_for(stack.container())
    sweep.clock = lambda: datetime.now(UTC) + timedelta(minutes=30)
    assert stack.host.call(sweep.run()).outcomes["waiting"] == 1
    sweep.clock = lambda: datetime.now(UTC) + timedelta(minutes=61)
    assert stack.host.call(sweep.run()).outcomes["expired"] == 1
    assert "passLapsed" in trail(stack, request_id)
    [expired] = events(stack, "expired")
    assert expired.data["passLapsed"] is True
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")


def test_a_pass_that_expired_before_a_passkey_is_deleted_and_the_reset_closed(stack: Stack):
    """Once Graph reports our pass Expired and no passkey came, the sweep deletes it and closes the reset: the user
    cannot sign in any more, so the manager is told to request again and the onboarding access is removed."""
    request_id, pickup_id = reset_and_reveal(stack)
    run_sweep(stack)
    assert TAP in methods_of(stack)  # still usable: left alone
    # The pass as if minted 9 hours ago (advancing the tenant clock instead would also expire the app's cached
    # Graph token, which azure-identity times by the real clock).
    [issued] = [m for m in stack.tenant.state.users[F.U["tom"]]["methods"] if m["@odata.type"] == TAP]
    aged = {**issued, "startDateTime": (datetime.now(UTC) - timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    httpx.post(f"{stack.tenant.url}/_control/users/{F.U['tom']}/methods", json=aged).raise_for_status()
    run_sweep(stack)
    assert TAP not in methods_of(stack)
    assert {"passDeleted", "passLapsed"} <= set(trail(stack, request_id))
    container = stack.container()
    assert stack.host.call(container.resets.get(request_id)).state == "expired"
    assert stack.host.call(container.pickups.get(pickup_id)).state == "expired"
    [expired] = events(stack, "expired")
    assert expired.manager_id == F.U["megan"]
    assert expired.data["passLapsed"] is True
    assert "before a passkey was registered" in expired.detail
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")


def test_throttling_during_the_sweep_loses_nothing(stack: Stack):
    """EM throttles the removal past the SDK's retries: the run stops, the next one finishes, nothing is doubled."""
    request_id, _ = reset_and_reveal(stack)
    register_passkey(stack)
    fault = {"pattern": f"{REQUESTS}$", "method": "POST", "status": 429, "remaining": 4, "retryAfter": 0}
    httpx.put(f"{stack.tenant.url}/_control/faults", json=[fault]).raise_for_status()

    report = stack.host.call(sweep_for(stack.container()).run())
    assert report.stopped == "throttled"
    assert TAP not in methods_of(stack)  # the steps before the throttled one are kept
    assert removals(stack) == []
    assert in_onboarding_group(stack)

    run_sweep(stack)
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")
    assert len(removals(stack)) == 1
    assert len(events(stack, "completed")) == 1
    assert trail(stack, request_id).count("completed") == 1


def test_a_lapse_interrupted_by_throttling_is_finished_by_the_next_run(stack: Stack):
    """The run that finds the pass expired stops at EM's throttled removal; the next one still removes the access,
    audits and tells the manager, once."""
    request_id, pickup_id = reset_and_reveal(stack)
    [issued] = [m for m in stack.tenant.state.users[F.U["tom"]]["methods"] if m["@odata.type"] == TAP]
    aged = {**issued, "startDateTime": (datetime.now(UTC) - timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    httpx.post(f"{stack.tenant.url}/_control/users/{F.U['tom']}/methods", json=aged).raise_for_status()
    fault = {"pattern": f"{REQUESTS}$", "method": "POST", "status": 429, "remaining": 4, "retryAfter": 0}
    httpx.put(f"{stack.tenant.url}/_control/faults", json=[fault]).raise_for_status()

    report = stack.host.call(sweep_for(stack.container()).run())
    assert report.stopped == "throttled"
    assert TAP not in methods_of(stack)
    assert removals(stack) == []

    run_sweep(stack)
    wait_until(lambda: not in_onboarding_group(stack), "the group membership removed")
    assert len(removals(stack)) == 1
    assert len(events(stack, "expired")) == 1
    assert trail(stack, request_id).count("passLapsed") == 1
    assert stack.host.call(stack.container().pickups.get(pickup_id)).state == "expired"
