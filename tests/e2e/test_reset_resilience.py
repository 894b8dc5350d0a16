"""The reset flow under repetition, crashes and a flaky Graph: one reset and one resume per stage instance."""

from __future__ import annotations

import httpx
import pytest

from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.extensions.tokens import genuine
from tests.stack import wait_until

PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"


def resumes(stack: Stack, request_id: str) -> list[dict]:
    log = httpx.get(f"{stack.tenant.url}/_control/requests").json()
    return [e for e in log if e["path"].endswith(f"/assignmentRequests/{request_id}/resume") and e.get("status") == 204]


def approve_both(stack: Stack, request_id: str) -> None:
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.approve(request_id, F.U["megan"])
    stack.em.approve(request_id, F.U["sam"])


def test_the_same_callout_sent_ten_times_gives_one_reset_and_one_resume(stack: Stack):
    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    created = stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    token = genuine(stack.tenant)
    for _ in range(10):
        answer = httpx.post(
            f"{stack.host.url}/api/callout", json=created["sentBody"], headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 202
    wait_until(lambda: stack.host.pollers[0].processed >= 1, "the worker to run")
    assert len(resumes(stack, request_id)) == 1
    container = stack.container()
    trail = stack.host.call(container.resets.audit_trail(request_id))
    assert [row["Event"] for row in trail].count("requested") == 1


def test_a_worker_that_dies_after_deleting_methods_is_completed_by_the_redelivery(stack: Stack):
    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    # The manager lookup comes right after the deletions on the granted stage: fail it once (500 is not retried
    # by the SDK), so the worker dies there and the host redelivers the message.
    faults = [{"pattern": f"/users/{F.U['tom']}/manager$", "status": 500, "remaining": 1, "retryAfter": 0}]
    httpx.put(f"{stack.tenant.url}/_control/faults", json=faults).raise_for_status()
    approve_both(stack, request_id)
    granted = stack.em.wait_stage_status(request_id, "assignmentRequestGranted", {"callbackReceived"}, seconds=60)
    assert "removed" in granted["detail"]
    assert stack.host.pollers[0].failed >= 1
    assert [m["@odata.type"] for m in stack.tenant.state.users[F.U["tom"]]["methods"]] == [PASSWORD]
    assert len(resumes(stack, request_id)) == 2  # created + granted, each exactly once
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert [row["Event"] for row in trail].count("methodsDeleted") == 1


def test_every_reset_completes_with_a_fifth_of_graph_calls_throttled_or_failing(stack: Stack):
    faults = [
        {"pattern": "^/(v1.0|beta)/", "status": 429, "rate": 0.1, "retryAfter": 1},
        {"pattern": "^/(v1.0|beta)/", "status": 503, "rate": 0.1, "retryAfter": 1},
    ]
    httpx.put(f"{stack.tenant.url}/_control/faults", json={"faults": faults, "seed": 7}).raise_for_status()
    targets = [F.U["tom"], F.U["lena"]]
    requests = [stack.em.submit(F.U["megan"], target) for target in targets]
    for request_id in requests:
        stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"}, seconds=60)
        approve_both(stack, request_id)
    for request_id, target in zip(requests, targets, strict=True):
        granted = stack.em.wait_stage_status(request_id, "assignmentRequestGranted", {"callbackReceived"}, seconds=90)
        assert "Still registered" not in granted["detail"], granted["detail"]
        assert [m["@odata.type"] for m in stack.tenant.state.users[target]["methods"]] == [PASSWORD]
        assert len(resumes(stack, request_id)) == 2
    counters = httpx.get(f"{stack.tenant.url}/_control/throttle").json()["counters"]
    injected = sum(v for app in counters.values() for k, v in app.items() if k.startswith("fault"))
    assert injected > 0


def test_a_worker_that_dies_between_sending_a_message_and_noting_it_sends_it_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    """Messages are at least once: a repeat on redelivery rather than a lost notice (the resume stays single)."""
    container = stack.container()
    real_mark = container.resets.mark_step
    failed = []

    async def mark_step(request_id: str, step: str, **data):
        if step.endswith("notify-requested") and not failed:
            failed.append(step)
            raise RuntimeError("the worker died right after sending")
        await real_mark(request_id, step, **data)

    monkeypatch.setattr(container.resets, "mark_step", mark_step)
    request_id = stack.em.submit(F.U["megan"], F.U["tom"])
    stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    wait_until(lambda: [e.kind for e in container.notifier.events].count("requested") == 2, "the notice sent again")
    assert failed
    assert len(resumes(stack, request_id)) == 1
