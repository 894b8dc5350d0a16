"""Every event's messages for every audience: readable in all three formats, escaped, and never holding a pass."""

from __future__ import annotations

import json

import pytest

from notify import Event, EventKind
from notify.message import Audience, Context
from notify.render import to_card, to_html, to_text
from notify.templates import AUDIENCES, render

PASS = "Xq7#pW2m"  # what a Temporary Access Pass looks like
NAMES = {"t": "Tom Target", "r": "Hank Helpdesk", "m": "Megan Manager"}
LINK = "https://mfa.contoso.example/api/pickup/p-1"


def event(kind: EventKind, **data) -> Event:
    return Event(kind, "req-1", target_id="t", requestor_id="r", manager_id="m", detail="Some detail.", data=data)


CASES = [(kind, audience) for kind, audiences in AUDIENCES.items() for audience in audiences]


@pytest.mark.parametrize(("kind", "audience"), CASES)
def test_every_message_names_the_user_and_renders_in_every_format(kind: EventKind, audience: Audience):
    """Each (event, audience) pair has a subject, plain text, HTML and an Adaptive Card 1.4 with a text fallback."""
    message = render(Context.of(event(kind, pickupUrl=LINK), NAMES), audience)
    text, html, card = to_text(message), to_html(message), to_card(message)
    assert message.subject
    assert "Tom Target" in text or kind is EventKind.FAILURE
    assert html.startswith("<!DOCTYPE html>")
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["fallbackText"] == text


@pytest.mark.parametrize(("kind", "audience"), CASES)
def test_no_rendered_message_holds_a_pass_even_when_an_event_carries_one(kind: EventKind, audience: Audience):
    """Templates read only whitelisted event data, so a pass smuggled into any other key never reaches a message."""
    smuggled = {k: PASS for k in ("temporaryAccessPass", "pass", "tap", "secret", "code", "value")}
    message = render(Context.of(event(kind, pickupUrl=LINK, **smuggled), NAMES), audience)
    rendered = to_text(message) + to_html(message) + json.dumps(to_card(message)) + message.subject
    assert PASS not in rendered


def test_only_the_managers_pickup_message_carries_the_link():
    """pickupReady: the link is in the manager's message and in no other audience's."""
    context = Context.of(event(EventKind.PICKUP_READY, pickupUrl=LINK), NAMES)
    with_link = {a for a in AUDIENCES[EventKind.PICKUP_READY] if LINK in to_text(render(context, a))}
    assert with_link == {Audience.MANAGER}


def test_names_are_escaped_in_html():
    """A display name with markup is shown as text in the email's HTML."""
    context = Context.of(event(EventKind.APPROVED), {**NAMES, "t": "<script>x</script>"})
    html = to_html(render(context, Audience.REQUESTER))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_denial_tells_the_requester_the_reason():
    """denied: the requester reads the guardrail's reason."""
    reason = "Only the target's manager may request a reset."
    denied = Event(EventKind.DENIED, "req-1", target_id="t", requestor_id="r", detail=reason)
    assert f"Reason: {reason}" in to_text(render(Context.of(denied, NAMES), Audience.REQUESTER))


def test_a_failure_is_an_alert_card_for_the_channel():
    """failure: the channel's card is styled as an alert and carries the reason."""
    failed = Event(EventKind.FAILURE, "req-1", detail="Graph refused the deletion")
    card = to_card(render(Context.of(failed, {}), Audience.CHANNEL))
    assert card["body"][0]["color"] == "Attention"
    assert "Graph refused the deletion" in json.dumps(card)


def test_every_event_kind_has_audiences():
    """No event kind the workflow raises is silently dropped."""
    assert set(AUDIENCES) == set(EventKind)


def test_an_expiry_says_whether_the_pickup_or_the_revealed_pass_ran_out():
    """expired: never picked up, or (passLapsed) the pass ran out before a passkey; both ask for a new request."""
    unrevealed = to_text(render(Context.of(event(EventKind.EXPIRED), NAMES), Audience.MANAGER))
    lapsed = to_text(render(Context.of(event(EventKind.EXPIRED, passLapsed=True), NAMES), Audience.MANAGER))
    assert "expired before the pass was handed over" in unrevealed
    assert "ran out before a passkey was registered" in lapsed
    assert all("request a new MFA reset" in text for text in (unrevealed, lapsed))
