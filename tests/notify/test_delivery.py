"""Events delivered through the real azure-communication-email client, the Bot Connector and the Workflows webhook
of the local tenant: the right recipients, the right links, readable content, failures retried and audited."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from local.tenant import TenantServer
from notify import Event, EventKind
from store.records import ResetStore
from tests.conftest import F
from tests.notify.conftest import WEBHOOK_SECRET, Sinks

TOM, MEGAN, HANK = F.U["tom"], F.U["megan"], F.U["hank"]
LINK = "http://127.0.0.1:7071/api/pickup/p-123"


def event(kind: EventKind, **changes) -> Event:
    values = dict(
        kind=kind,
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        target_id=TOM,
        target_name="Tom Target",
        requestor_id=HANK,
        manager_id=MEGAN,
        detail="MFA reset: 4 methods removed and sign-in sessions revoked.",
    )
    values.update(changes)
    return Event(**values)


def audit_events(resets: ResetStore, request_id: str):
    return resets.audit_trail(request_id)


async def test_a_request_reaches_requester_and_manager_by_mail_and_teams_and_the_channel(
    make_notifier, sinks: Sinks, resets: ResetStore
):
    """requested: Hank (requester) and Megan (manager) get an email and a Teams card each; the channel a card."""
    notifier = make_notifier()
    raised = event(EventKind.REQUESTED)
    await notifier.notify(raised)
    emails = sinks.emails()
    assert sorted(m["to"][0] for m in emails) == ["hank@contoso.local", "megan@contoso.local"]
    assert all(m["senderAddress"] == "DoNotReply@contoso.local" and m["plainText"] and m["html"] for m in emails)
    assert all("Tom Target" in m["subject"] for m in emails)
    assert {a["recipient"] for a in sinks.activities()} == {HANK, MEGAN}
    [card] = sinks.cards()
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard"
    assert "Hank Helpdesk" in json.dumps(content)
    trail = await resets.audit_trail(raised.request_id)
    [notified] = [row for row in trail if row["Event"] == "notified"]
    assert notified["Detail"] == "requested: 5 of 5 delivered"


async def test_a_requester_who_is_the_manager_gets_one_message_per_transport(make_notifier, sinks: Sinks):
    """A manager asking for their report's reset is told once, as the requester."""
    await make_notifier().notify(event(EventKind.REQUESTED, requestor_id=MEGAN))
    assert [m["to"] for m in sinks.emails()] == [["megan@contoso.local"]]
    assert "Your request" in sinks.emails()[0]["plainText"]
    assert [a["recipient"] for a in sinks.activities()] == [MEGAN]


async def test_the_pickup_link_goes_to_the_manager_only(make_notifier, sinks: Sinks):
    """pickupReady: the manager's mail and card carry the link; requester, target and channel learn what is next."""
    await make_notifier().notify(event(EventKind.PICKUP_READY, data={"pickupUrl": LINK}))
    by_address = {m["to"][0]: m for m in sinks.emails()}
    assert set(by_address) == {"megan@contoso.local", "hank@contoso.local", "tom@contoso.local"}
    assert LINK in by_address["megan@contoso.local"]["plainText"]
    assert f'href="{LINK}"' in by_address["megan@contoso.local"]["html"]
    assert LINK not in by_address["hank@contoso.local"]["plainText"] + by_address["hank@contoso.local"]["html"]
    assert "Megan Manager will verify your identity" in by_address["tom@contoso.local"]["plainText"]
    cards = {a["recipient"]: a["attachments"][0]["content"] for a in sinks.activities()}
    assert cards[MEGAN]["actions"] == [{"type": "Action.OpenUrl", "title": "Open the pickup page", "url": LINK}]
    assert "actions" not in cards[TOM]
    assert "actions" not in cards[HANK]
    assert LINK not in json.dumps(sinks.cards())


async def test_the_bot_is_installed_for_a_user_without_it_and_the_message_follows(
    make_notifier, sinks: Sinks, tenant_env: TenantServer, resets: ResetStore
):
    """Tom lacks the Teams app: the bot's 403 leads to a Graph installation, and the retry delivers the card."""
    assert TOM not in tenant_env.state.fixture["bot"]["installedFor"]
    notifier = make_notifier(NOTIFY_EMAIL_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False)
    raised = event(EventKind.PICKUP_READY, requestor_id=MEGAN)
    await notifier.notify(raised)
    assert TOM in tenant_env.state.fixture["bot"]["installedFor"]
    assert sorted(a["recipient"] for a in sinks.activities()) == sorted([MEGAN, TOM])
    assert not [r for r in await resets.audit_trail(raised.request_id) if r["Event"] == "notifyFailed"]


async def test_without_a_catalog_id_a_user_lacking_the_app_is_skipped_and_audited(
    make_notifier, sinks: Sinks, resets: ResetStore
):
    """No TEAMS_APP_CATALOG_ID: Tom cannot get the app, so his Teams message is audited as not deliverable."""
    notifier = make_notifier(NOTIFY_EMAIL_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False, TEAMS_APP_CATALOG_ID="")
    raised = event(EventKind.PICKUP_READY, requestor_id=MEGAN)
    await notifier.notify(raised)
    assert [a["recipient"] for a in sinks.activities()] == [MEGAN]
    [failed] = [r for r in await resets.audit_trail(raised.request_id) if r["Event"] == "notifyFailed"]
    assert json.loads(failed["Data"])["recipient"] == f"target:{TOM}"
    assert json.loads(failed["Data"])["code"] == "notDeliverable"


async def test_a_webhook_429_is_retried_and_the_card_arrives(make_notifier, sinks: Sinks, resets: ResetStore):
    """The channel answers 429 once; the card is posted on the retry and nothing is audited as failed."""
    sinks.control("PUT", "webhooks/reset-channel/fail", {"count": 1, "status": 429})
    notifier = make_notifier(NOTIFY_EMAIL_ENABLED=False, NOTIFY_TEAMS_ENABLED=False)
    raised = event(EventKind.REVEALED, data={"revealedByName": "Megan Manager", "revealedAt": "2025-01-01T10:00:00Z"})
    await notifier.notify(raised)
    [card] = sinks.cards()
    assert "Megan Manager" in json.dumps(card)
    trail = await resets.audit_trail(raised.request_id)
    assert json.loads(next(r for r in trail if r["Event"] == "notified")["Data"])["throttled"] == 1


async def test_a_channel_that_keeps_failing_is_audited_and_notify_returns(
    make_notifier, sinks: Sinks, resets: ResetStore
):
    """Four 503s in a row exhaust the attempts: notify still returns, and the failure is in the audit trail."""
    sinks.control("PUT", "webhooks/reset-channel/fail", {"count": 10, "status": 503})
    notifier = make_notifier(NOTIFY_EMAIL_ENABLED=False, NOTIFY_TEAMS_ENABLED=False)
    raised = event(EventKind.FAILURE, detail="Graph refused the deletion")
    await notifier.notify(raised)
    assert sinks.cards() == []
    [failed] = [r for r in await resets.audit_trail(raised.request_id) if r["Event"] == "notifyFailed"]
    data = json.loads(failed["Data"])
    assert (data["transport"], data["code"], data["attempts"]) == ("channel", "http503", 4)


async def test_an_acs_429_is_retried_with_the_same_operation_id(make_notifier, sinks: Sinks):
    """ACS throttles the first send; the retry succeeds and the requester gets exactly one mail."""
    sinks.control("POST", "acs/fail-next", {"count": 1, "status": 429, "retryAfter": 0})
    notifier = make_notifier(NOTIFY_TEAMS_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False)
    await notifier.notify(event(EventKind.DENIED, detail="The target is protected."))
    [mail] = sinks.emails()
    assert mail["to"] == ["hank@contoso.local"]
    assert "Reason: The target is protected." in mail["plainText"]


async def test_the_services_quota_429_beyond_the_budget_is_reported_as_throttled(
    make_notifier, sinks: Sinks, resets: ResetStore
):
    """ACS's own quota is spent (Retry-After far beyond the budget): the mail is not retried and is audited."""
    sinks.control("PUT", "acs/limits", {"perMinute": 1})
    notifier = make_notifier(NOTIFY_TEAMS_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False)
    raised = event(EventKind.APPROVED)
    await notifier.notify(raised)
    assert len(sinks.emails()) == 1
    [throttled] = [r for r in await resets.audit_trail(raised.request_id) if r["Event"] == "notifyThrottled"]
    assert json.loads(throttled["Data"])["retryAfter"] > 5


async def test_our_own_quota_holds_mail_back_before_the_service_refuses(
    make_notifier, sinks: Sinks, resets: ResetStore
):
    """ACS_EMAILS_PER_MINUTE=2: the third mail is not sent at all and is reported as throttled."""
    notifier = make_notifier(NOTIFY_TEAMS_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False, ACS_EMAILS_PER_MINUTE=2)
    raised = event(EventKind.PICKUP_READY, data={"pickupUrl": LINK})
    await notifier.notify(raised)
    assert len(sinks.emails()) == 2
    trail = await resets.audit_trail(raised.request_id)
    assert len([r for r in trail if r["Event"] == "notifyThrottled"]) == 1
    [email] = [t for t in notifier.transports if t.name == "email"]
    assert email.quota.refused >= 1


async def test_a_dropped_email_is_audited_without_a_retry(make_notifier, sinks: Sinks, resets: ResetStore):
    """ACS accepts the send but the operation ends Failed (EmailDropped): one attempt, audited as emailFailed."""
    sinks.control("POST", "acs/fail-next", {"count": 1, "status": "Failed"})
    notifier = make_notifier(NOTIFY_TEAMS_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False)
    raised = event(EventKind.DENIED, detail="Rate limit")
    await notifier.notify(raised)
    [failed] = [r for r in await resets.audit_trail(raised.request_id) if r["Event"] == "notifyFailed"]
    assert json.loads(failed["Data"])["code"] == "emailFailed"
    assert json.loads(failed["Data"])["attempts"] == 1


async def test_a_connection_string_client_sends_too(make_notifier, sinks: Sinks, tenant_env: TenantServer):
    """Locally ACS_CONNECTION_STRING (HMAC) replaces the managed identity; the mail arrives signed by the key."""
    key = tenant_env.state.fixture["acs"]["accessKey"]
    notifier = make_notifier(
        NOTIFY_TEAMS_ENABLED=False,
        NOTIFY_CHANNEL_ENABLED=False,
        ACS_CONNECTION_STRING=f"endpoint={tenant_env.https_url}/;accesskey={key}",
    )
    await notifier.notify(event(EventKind.APPROVED))
    assert {m["auth"] for m in sinks.emails()} == {"hmac"}
    assert len(sinks.emails()) == 2


async def test_the_managed_identity_sends_mail_by_default(make_notifier, sinks: Sinks):
    """With ACS_ENDPOINT only, the mail is sent with the function app's managed identity."""
    await make_notifier(NOTIFY_TEAMS_ENABLED=False, NOTIFY_CHANNEL_ENABLED=False).notify(event(EventKind.COMPLETED))
    assert {(m["auth"], m["appId"]) for m in sinks.emails()} == {("entra", F.APP["func"][0])}


async def test_the_webhook_signature_never_reaches_the_logs(
    make_notifier, sinks: Sinks, caplog: pytest.LogCaptureFixture
):
    """httpx logs request URLs (when its logger is turned up); the channel webhook's sig is masked in every record."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # configure() quiets it in the app; an operator may not
    await make_notifier(NOTIFY_EMAIL_ENABLED=False, NOTIFY_TEAMS_ENABLED=False).notify(event(EventKind.FAILURE))
    assert len(sinks.cards()) == 1
    assert any("webhooks/reset-channel" in r.getMessage() for r in caplog.records)
    assert not any(WEBHOOK_SECRET in r.getMessage() for r in caplog.records)
