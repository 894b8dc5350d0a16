"""A whole MFA reset on the dev host with every transport on: who heard what, and no message holds the pass."""

from __future__ import annotations

import json

import pytest

from local.tenant import TenantServer
from tests.conftest import F
from tests.e2e.conftest import Stack
from tests.e2e.test_pickup_page import PASS, browser, nonce_of, open_pickup, reveal
from tests.notify.conftest import Sinks, notify_settings, set_notify_env
from tests.stack import wait_until


@pytest.fixture
def notify_env(tenant: TenantServer, monkeypatch: pytest.MonkeyPatch) -> Sinks:
    """Every transport on, pointed at the tenant; set before the stack fixture builds the host."""
    settings = notify_settings(tenant)
    set_notify_env(monkeypatch, settings)
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")
    sinks = Sinks(tenant)
    sinks.control("PUT", "acs/limits", {"retryAfterSeconds": 0})
    return sinks


def test_a_reset_notifies_each_step_and_no_message_holds_the_revealed_pass(notify_env: Sinks, stack: Stack):
    """Megan resets Tom and reveals the pass: mails, Teams cards and channel cards follow each step, the pickup
    link reaches Megan only, and the pass appears in nothing any transport delivered."""
    sinks = notify_env
    request_id, pickup_id = open_pickup(stack)
    megan = browser(stack, "megan")
    shown = reveal(megan, pickup_id, nonce_of(megan.get(f"/api/pickup/{pickup_id}")))
    assert shown.status_code == 200, shown.text
    secret = PASS.search(shown.text).group(1)
    wait_until(lambda: any("revealed" in json.dumps(c).lower() for c in sinks.cards()), "the revealed card")

    subjects = [m["subject"] for m in sinks.emails()]
    assert any("requested" in s for s in subjects)
    assert any("approved" in s for s in subjects)
    assert "Your MFA methods were reset" in subjects  # Tom, the target
    link = f"{stack.settings.get('PICKUP_BASE_URL', 'http://127.0.0.1:7071/api/pickup').rstrip('/')}/{pickup_id}"
    holders = {m["to"][0] for m in sinks.emails() if pickup_id in m["plainText"]}
    assert holders == {"megan@contoso.local"}
    assert any(link in m["plainText"] for m in sinks.emails())
    assert F.U["tom"] in {a["recipient"] for a in sinks.activities()}  # the bot was installed for Tom
    assert len(sinks.cards()) >= 3  # requested, pickup ready, revealed
    assert secret not in sinks.everything()
    trail = stack.host.call(stack.container().resets.audit_trail(request_id))
    assert not [r for r in trail if r["Event"] == "notifyFailed"]
