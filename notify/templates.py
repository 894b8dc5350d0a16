"""Every notification's wording, per event and audience, in one place. Never mentions a pass value."""

from __future__ import annotations

from collections.abc import Callable

from .events import EventKind
from .message import Audience, Context, Message

R, M, T, C = Audience.REQUESTER, Audience.MANAGER, Audience.TARGET, Audience.CHANNEL

# Who hears about what. People get email and a Teams message; the channel gets a card through its webhook.
AUDIENCES: dict[EventKind, tuple[Audience, ...]] = {
    EventKind.REQUESTED: (R, M, C),
    EventKind.DENIED: (R, C),
    EventKind.APPROVED: (R, M),
    EventKind.PICKUP_READY: (M, R, T, C),
    EventKind.REVEALED: (C,),
    EventKind.COMPLETED: (R, M, T, C),
    EventKind.REMOVED: (R, M, C),
    EventKind.EXPIRED: (R, M, C),
    EventKind.FAILURE: (C,),
}

REGISTER_URL = "https://aka.ms/mysecurityinfo"
Template = Callable[[Context], Message]


def _facts(c: Context, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("User", c.target), *extra, ("Request", c.request_id))


def _requested(c: Context, a: Audience) -> Message:
    subject = f"MFA reset requested for {c.target}"
    if a is R:
        text = (
            f"Your request to reset the MFA methods of {c.target} passed the checks.",
            "It now waits for approval in My Access. You will hear from us at each step.",
        )
    elif a is M:
        text = (
            f"{c.requester} asked to reset the MFA methods of {c.target}, who reports to you.",
            "Approvers review it in My Access. Once it is granted you will get a link to pick up a one-time "
            "Temporary Access Pass, to hand over after verifying the user in person or on video.",
        )
    else:
        text = (f"{c.requester} requested an MFA reset for {c.target}. Guardrails passed; waiting for approval.",)
    return Message(subject, subject, text, _facts(c, ("Requested by", c.requester)))


def _denied(c: Context, a: Audience) -> Message:
    subject = f"MFA reset for {c.target} denied"
    reason = c.detail or "No reason was given."
    if a is R:
        text = (f"Your request to reset the MFA methods of {c.target} was denied.", f"Reason: {reason}")
    else:
        text = (f"A request by {c.requester} to reset the MFA methods of {c.target} was denied.", f"Reason: {reason}")
    return Message(subject, subject, text, _facts(c, ("Requested by", c.requester)))


def _approved(c: Context, a: Audience) -> Message:
    subject = f"MFA reset for {c.target} approved"
    text = (
        f"The MFA reset of {c.target} was approved.",
        f"When access is granted, the user's MFA methods are removed and sessions revoked, and {c.manager} "
        "gets a link to pick up a one-time Temporary Access Pass.",
    )
    return Message(subject, subject, text, _facts(c))


def _pickup_ready(c: Context, a: Audience) -> Message:
    subject = f"MFA reset for {c.target} done: pass ready for pickup"
    summary = c.detail or "The MFA methods were removed and sign-in sessions revoked."
    expires = c.data.get("pickupExpiresAt")
    extra = (("Pickup open until", str(expires)),) if expires else ()
    if a is M:
        url = c.data.get("pickupUrl")
        text = (
            summary,
            f"Verify {c.target} in person or on video, then open the pickup page and press Reveal. The Temporary "
            "Access Pass is shown once, only to you; hand it over directly, never by email or chat.",
        )
        link = ("Open the pickup page", url) if url else None
        return Message(subject, subject, text, _facts(c, *extra), link=link)
    if a is T:
        subject = "Your MFA methods were reset"
        text = (
            summary,
            f"{c.manager} will verify your identity in person or on video and then give you a Temporary "
            f"Access Pass. Sign in with it and register a passkey at {REGISTER_URL}.",
            "Nobody will ask for the pass by email or chat.",
        )
        return Message(subject, subject, text, _facts(c))
    if a is R:
        text = (summary, f"{c.manager} will verify {c.target} and hand over a one-time Temporary Access Pass.")
        return Message(subject, subject, text, _facts(c))
    text = (summary, f"Pickup opened for {c.manager}.")
    return Message(subject, subject, text, _facts(c, ("Deliverer", c.manager), *extra))


def _revealed(c: Context, a: Audience) -> Message:
    subject = f"Temporary Access Pass revealed for {c.target}"
    by = str(c.data.get("revealedByName") or c.manager)
    facts = _facts(
        c,
        ("Revealed by", by),
        ("Revealed at", str(c.data.get("revealedAt", ""))),
        ("Pass expires", str(c.data.get("expiresAt", ""))),
    )
    return Message(subject, subject, (f"{by} revealed the Temporary Access Pass for {c.target} on the pickup page.",),
                   facts)  # fmt: skip


def _completed(c: Context, a: Audience) -> Message:
    subject = f"MFA reset for {c.target} complete"
    if a is T:
        text = ("You registered a passkey. Your MFA reset is complete and the temporary pass was removed.",)
    else:
        text = (f"{c.target} registered a passkey; the temporary pass was removed and the onboarding access ended.",)
    return Message(subject, subject, text, _facts(c))


def _removed(c: Context, a: Audience) -> Message:
    expired = c.kind == EventKind.EXPIRED
    subject = f"MFA reset for {c.target} {'expired' if expired else 'closed'}"
    if expired and c.data.get("passLapsed"):
        first = f"The Temporary Access Pass for {c.target} ran out before a passkey was registered."
    elif expired:
        first = f"The pickup for {c.target} expired before the pass was handed over."
    else:
        first = f"The MFA reset access for {c.target} was removed."
    text = (first, c.detail or "Any unused Temporary Access Pass was deleted and the pickup closed.")
    if a is not C:
        text += ("If the user still needs help signing in, request a new MFA reset in My Access.",)
    return Message(subject, subject, text, _facts(c))


def _failure(c: Context, a: Audience) -> Message:
    subject = "MFA reset failed: action needed"
    text = ("An MFA reset could not be completed and needs an administrator.", f"Reason: {c.detail or 'unknown'}")
    return Message(subject, subject, text, (("Request", c.request_id),), alert=True)


_TEMPLATES = {
    EventKind.REQUESTED: _requested,
    EventKind.DENIED: _denied,
    EventKind.APPROVED: _approved,
    EventKind.PICKUP_READY: _pickup_ready,
    EventKind.REVEALED: _revealed,
    EventKind.COMPLETED: _completed,
    EventKind.REMOVED: _removed,
    EventKind.EXPIRED: _removed,
    EventKind.FAILURE: _failure,
}


def render(context: Context, audience: Audience) -> Message:
    """The message for one audience of one event."""
    return _TEMPLATES[EventKind(context.kind)](context, audience)


# The bot's one answer when someone writes to it in Teams (extensions/bot_messages.py): it cannot converse.
MY_ACCESS_URL = "https://myaccess.microsoft.com"
BOT_REPLY = (
    "I only send notifications about MFA resets. I never send a Temporary Access Pass, here or anywhere else, "
    "and nobody should ask you for one in a chat. To request an MFA reset, ask for the MFA reset access package "
    f"in My Access: {MY_ACCESS_URL}"
)
