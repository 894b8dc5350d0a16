"""The view-once pickup page through the dev host: a real reset leaves a pickup; Megan signs in with the dev
host's Easy Auth stand-in, reveals the pass once; nobody else can; nothing written anywhere holds the pass."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local.tenant.fixtures import make_default as F
from tests.e2e.conftest import Stack
from tests.stack import wait_until

PASS = re.compile(r'<output id="pass"[^>]*>([^<]+)</output>')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
NAMES = {"megan": "Megan Manager", "tom": "Tom Target", "hank": "Hank Helpdesk", "dana": "Dana Director"}


@pytest.fixture(autouse=True)
def _easy_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Easy Auth (the dev host's stand-in) fronts the app; set before the stack fixture builds the host."""
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")


def open_pickup(stack: Stack) -> tuple[str, str]:
    """Run Megan's MFA reset of Tom to the end; (request id, pickup id)."""
    request_id = stack.em.submit(F.U["megan"], F.U["tom"], justification="lost phone")
    stack.em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
    wait_until(lambda: stack.em.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
    stack.em.approve(request_id, F.U["megan"])
    stack.em.approve(request_id, F.U["sam"])
    stack.em.wait_stage_status(request_id, "assignmentRequestGranted", {"callbackReceived"}, seconds=45)
    reset = stack.host.call(stack.container().resets.get(request_id))
    assert reset is not None
    assert reset.pickup_id
    return request_id, reset.pickup_id


def browser(stack: Stack, who: str | None) -> httpx.Client:
    """An HTTP client signed in (cookie) as a fixture user through the stand-in, or anonymous."""
    client = httpx.Client(base_url=stack.host.url, timeout=30)
    if who is not None:
        signed = client.get("/.auth/login/local", params={"user": F.U[who], "name": NAMES[who]})
        assert signed.status_code == 200, signed.text
    return client


def taps_issued(stack: Stack) -> int:
    return len(stack.tenant.state.extras.get("taps_issued", []))


def reveal(client: httpx.Client, pickup_id: str, nonce: str | None) -> httpx.Response:
    data = {"nonce": nonce} if nonce is not None else {}
    return client.post(f"/api/pickup/{pickup_id}/reveal", data=data)


def nonce_of(page: httpx.Response) -> str:
    found = NONCE.search(page.text)
    assert found, page.text
    return found.group(1)


async def _everything_stored(connection: str, prefix: str, queue: str) -> str:
    """Every entity of the run's tables and every message of its queues, as text."""
    parts: list[str] = []
    async with TableServiceClient.from_connection_string(connection) as service:
        async for table in service.list_tables():
            if not table.name.startswith(prefix):
                continue
            async for entity in service.get_table_client(table.name).list_entities():
                parts.append(repr(dict(entity)))
    async with QueueServiceClient.from_connection_string(connection) as queues:
        async for info in queues.list_queues():
            if info.name.startswith(queue):
                peeked = await queues.get_queue_client(info.name).peek_messages(max_messages=32)
                parts += [message.content for message in peeked]
    return "\n".join(parts)


def test_the_manager_reveals_the_pass_once_and_nothing_written_holds_it(stack: Stack, caplog):
    caplog.set_level(logging.DEBUG)
    request_id, pickup_id = open_pickup(stack)
    megan = browser(stack, "megan")

    page = megan.get(f"/api/pickup/{pickup_id}")
    assert page.status_code == 200, page.text
    assert "Tom Target" in page.text
    assert "methods removed" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert taps_issued(stack) == 0  # viewing mints nothing

    shown = reveal(megan, pickup_id, nonce_of(page))
    assert shown.status_code == 200, shown.text
    assert shown.headers["cache-control"] == "no-store"
    secret = PASS.search(shown.text).group(1)
    assert len(secret) >= 8
    assert taps_issued(stack) == 1
    tom = stack.tenant.state.users[F.U["tom"]]
    assert [m["@odata.type"] for m in tom["methods"]].count(
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    ) == 1
    issued = tom["methods"][-1]
    assert issued["lifetimeInMinutes"] == 480  # TAP_LIFETIME_MINUTES clamped into the fixture's 60..480
    assert issued["isUsableOnce"] is False

    reload = megan.get(f"/api/pickup/{pickup_id}")
    assert reload.status_code == 200
    assert "already revealed" in reload.text
    assert "Megan Manager" in reload.text
    assert secret not in reload.text
    again = reveal(megan, pickup_id, nonce_of(page))
    assert again.status_code == 409
    assert secret not in again.text
    assert taps_issued(stack) == 1

    container = stack.container()
    trail = stack.host.call(container.resets.audit_trail(request_id))
    revealed = [row for row in trail if row["Event"] == "revealed"]
    assert len(revealed) == 1
    assert revealed[0]["Actor"] == F.U["megan"]
    assert "revealed by Megan Manager" in revealed[0]["Detail"]
    events = [e for e in container.notifier.events if e.kind == "revealed"]
    assert len(events) == 1
    assert events[0].data["revealedBy"] == F.U["megan"]

    stored = stack.host.call(
        _everything_stored(stack.settings["AzureWebJobsStorage"], stack.settings["TABLE_PREFIX"], "work-")
    )
    assert "revealed by Megan Manager" in stored  # the scan does see what the run wrote
    assert secret not in stored
    assert secret not in caplog.text
    assert "pickup" in caplog.text  # the dev host's log lines were captured
    assert secret not in repr(container.notifier.events)
    requests_log = httpx.get(f"{stack.tenant.url}/_control/requests").text
    assert "temporaryAccessPassMethods" in requests_log
    assert secret not in requests_log


def test_another_user_and_the_target_are_refused(stack: Stack):
    _, pickup_id = open_pickup(stack)
    nonce = stack.host.call(stack.container().pickups.get(pickup_id)).csrf_nonce
    for who in ("hank", "tom"):
        client = browser(stack, who)
        page = client.get(f"/api/pickup/{pickup_id}")
        assert page.status_code == 403, (who, page.text)
        assert nonce not in page.text
        assert reveal(client, pickup_id, nonce).status_code == 403
    assert "your own" in browser(stack, "tom").get(f"/api/pickup/{pickup_id}").text
    assert taps_issued(stack) == 0


def test_a_helpdesk_member_may_deliver_when_configured(stack: Stack, monkeypatch):
    from extensions import container as product_container
    from extensions.settings import get_settings

    _, pickup_id = open_pickup(stack)
    monkeypatch.setenv("HELPDESK_GROUP_ID", F.G["helpdesk"])
    get_settings.cache_clear()
    product_container.use_container(None)
    hank = browser(stack, "hank")
    page = hank.get(f"/api/pickup/{pickup_id}")
    assert page.status_code == 200, page.text
    assert reveal(hank, pickup_id, nonce_of(page)).status_code == 200
    assert taps_issued(stack) == 1


def test_a_manager_who_is_no_longer_the_manager_is_refused(stack: Stack):
    _, pickup_id = open_pickup(stack)
    stack.tenant.state.users[F.U["tom"]]["managerId"] = F.U["dana"]
    page = browser(stack, "megan").get(f"/api/pickup/{pickup_id}")
    assert page.status_code == 403
    assert "no longer" in page.text
    assert browser(stack, "dana").get(f"/api/pickup/{pickup_id}").status_code == 403  # not the deliverer


def test_without_a_sign_in_or_without_easy_auth_nobody_gets_in(stack: Stack, monkeypatch):
    from extensions import container as product_container
    from extensions.settings import get_settings

    _, pickup_id = open_pickup(stack)
    anonymous = browser(stack, None)
    unknown = anonymous.get(f"/api/pickup/{pickup_id}")
    assert unknown.status_code == 401
    assert f'href="/.auth/login/aad?post_login_redirect_uri=/api/pickup/{pickup_id}"' in unknown.text
    spoofed = anonymous.get(
        f"/api/pickup/{pickup_id}",
        headers={"X-MS-CLIENT-PRINCIPAL-ID": F.U["megan"], "X-MS-CLIENT-PRINCIPAL-NAME": "Megan"},
    )
    assert spoofed.status_code == 401  # the host strips principal headers from outside, as Easy Auth does

    monkeypatch.setenv("EASY_AUTH_ENABLED", "false")
    get_settings.cache_clear()
    product_container.use_container(None)
    refused = browser(stack, "megan").get(f"/api/pickup/{pickup_id}")
    assert refused.status_code == 401
    assert "EASY_AUTH_ENABLED" in refused.text


def test_a_reveal_without_the_pages_nonce_is_refused(stack: Stack):
    request_id, pickup_id = open_pickup(stack)
    megan = browser(stack, "megan")
    assert reveal(megan, pickup_id, None).status_code == 403
    assert reveal(megan, pickup_id, "guessed").status_code == 403
    genuine = stack.host.call(stack.container().pickups.get(pickup_id)).csrf_nonce
    forged = megan.post(
        f"/api/pickup/{pickup_id}/reveal", data={"nonce": genuine}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403
    assert taps_issued(stack) == 0
    pickup = stack.host.call(stack.container().pickups.get(pickup_id))
    assert pickup.state == "open"
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert [row["Detail"] for row in trail if row["Event"] == "revealRefused"] == ["csrf", "csrf", "csrf"]


def test_two_concurrent_reveals_mint_one_pass(stack: Stack):
    _, pickup_id = open_pickup(stack)
    clients = [browser(stack, "megan"), browser(stack, "megan")]
    nonce = nonce_of(clients[0].get(f"/api/pickup/{pickup_id}"))
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def click(client: httpx.Client) -> None:
        start.wait()
        answers.append(reveal(client, pickup_id, nonce))

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert sum(bool(PASS.search(a.text)) for a in answers) == 1
    assert taps_issued(stack) == 1


def test_an_expired_pickup_is_gone(stack: Stack):
    _, pickup_id = open_pickup(stack)
    container = stack.container()
    pickup = stack.host.call(container.pickups.get(pickup_id))
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert stack.host.call(container.pickups.transition(pickup, "open", ExpiresAt=past))
    megan = browser(stack, "megan")
    page = megan.get(f"/api/pickup/{pickup_id}")
    assert page.status_code == 410
    assert "expired" in page.text
    assert reveal(megan, pickup_id, pickup.csrf_nonce).status_code == 410
    assert taps_issued(stack) == 0


def test_a_disabled_tap_method_tells_the_manager_what_an_administrator_must_change(stack: Stack):
    request_id, pickup_id = open_pickup(stack)
    policy = stack.tenant.state.policies["temporaryAccessPass"]
    policy["state"] = "disabled"
    megan = browser(stack, "megan")
    nonce = nonce_of(megan.get(f"/api/pickup/{pickup_id}"))
    refused = reveal(megan, pickup_id, nonce)
    assert refused.status_code == 409
    assert "administrator must enable" in refused.text
    assert taps_issued(stack) == 0
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert [row["Detail"] for row in trail if row["Event"] == "revealRefused"] == ["tapDisabled"]

    policy["state"] = "enabled"  # the administrator fixed it: the pickup is still open
    assert reveal(megan, pickup_id, nonce).status_code == 200
    assert taps_issued(stack) == 1


def test_a_user_outside_the_policy_targets_is_explained(stack: Stack):
    _, pickup_id = open_pickup(stack)
    stack.tenant.state.policies["temporaryAccessPass"]["includeTargets"] = [
        {"targetType": "group", "id": F.G["onboarding"], "isRegistrationRequired": False}
    ]
    stack.tenant.state.groups[F.G["onboarding"]]["members"].remove(F.U["tom"])
    megan = browser(stack, "megan")
    refused = reveal(megan, pickup_id, nonce_of(megan.get(f"/api/pickup/{pickup_id}")))
    assert refused.status_code == 409
    assert "policy does not include this user" in refused.text
    assert taps_issued(stack) == 0


def test_a_graph_failure_while_minting_is_not_retried_and_reopens_the_pickup(stack: Stack):
    request_id, pickup_id = open_pickup(stack)
    faults = {"pattern": "temporaryAccessPassMethods", "method": "POST", "status": 503, "remaining": 1, "retryAfter": 1}
    httpx.put(f"{stack.tenant.url}/_control/faults", json=[faults]).raise_for_status()
    megan = browser(stack, "megan")
    nonce = nonce_of(megan.get(f"/api/pickup/{pickup_id}"))
    failed = reveal(megan, pickup_id, nonce)
    assert failed.status_code == 503, failed.text
    posts = [
        r
        for r in httpx.get(f"{stack.tenant.url}/_control/requests").json()
        if r["method"] == "POST" and r["path"].endswith("temporaryAccessPassMethods")
    ]
    assert len(posts) == 1  # the SDK's RetryHandler did not repeat it
    assert taps_issued(stack) == 0
    assert stack.host.call(stack.container().pickups.get(pickup_id)).state == "open"
    assert reveal(megan, pickup_id, nonce).status_code == 200
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert [row["Event"] for row in trail if row["Event"].startswith("reveal")] == ["revealFailed", "revealed"]


def test_a_pickup_opened_before_pickups_carried_a_nonce_gets_one_on_first_view(stack: Stack):
    _, pickup_id = open_pickup(stack)
    container = stack.container()
    pickup = stack.host.call(container.pickups.get(pickup_id))
    assert stack.host.call(container.pickups.transition(pickup, "open", CsrfNonce=""))
    megan = browser(stack, "megan")
    assert reveal(megan, pickup_id, "").status_code == 403  # an empty nonce never matches
    nonce = nonce_of(megan.get(f"/api/pickup/{pickup_id}"))
    assert nonce
    assert reveal(megan, pickup_id, nonce).status_code == 200


def test_the_pass_follows_the_tenant_policy_lifetime_and_one_time_use(stack: Stack):
    _, pickup_id = open_pickup(stack)
    stack.tenant.state.policies["temporaryAccessPass"].update(maximumLifetimeInMinutes=120, isUsableOnce=True)
    megan = browser(stack, "megan")
    shown = reveal(megan, pickup_id, nonce_of(megan.get(f"/api/pickup/{pickup_id}")))
    assert shown.status_code == 200, shown.text
    assert "one sign-in only" in shown.text
    issued = stack.tenant.state.users[F.U["tom"]]["methods"][-1]
    assert issued["lifetimeInMinutes"] == 120
    assert issued["isUsableOnce"] is True


class StuckNotifier:
    """A channel that never answers (the notifier's retries can last a while): reveals must not wait on it."""

    def __init__(self) -> None:
        self.started = 0

    async def notify(self, event) -> None:
        self.started += 1
        await asyncio.Event().wait()


def test_a_notification_channel_that_never_answers_does_not_hold_back_the_pass(stack: Stack):
    request_id, pickup_id = open_pickup(stack)
    stuck = StuckNotifier()
    stack.container().notifier = stuck
    megan = browser(stack, "megan")
    page = megan.get(f"/api/pickup/{pickup_id}")

    shown = reveal(megan, pickup_id, nonce_of(page))

    assert shown.status_code == 200, shown.text
    assert PASS.search(shown.text)
    assert stuck.started == 1
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert [row["Event"] for row in trail].count("revealed") == 1
