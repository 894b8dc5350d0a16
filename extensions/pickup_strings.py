# ruff: noqa: S105 - user-facing text about a "pass", not credentials
"""Every user-facing string of the pickup page, in one place (plain text: the view escapes what it inserts).

Placeholders use str.format names; values are escaped by the view, never here.
"""

from __future__ import annotations

LANG = "en"
PRODUCT = "MFA reset"

TITLE = "Temporary Access Pass pickup"
HEADING = "Pick up a Temporary Access Pass for {target}"
SKIP_LINK = "Skip to content"
SIGNED_IN_AS = "Signed in as {viewer}."
SIGN_IN_LINK = "Sign in"

# --- the open pickup ------------------------------------------------------------------------------------------
RESET_WHAT = "What was reset"
RESET_WHEN = "Reset on"
PICKUP_EXPIRES = "This pickup closes at"
COUNTDOWN_LABEL = "Time left to reveal"
INSTRUCTIONS = (
    "Verify {target} in person or on a video call before you reveal the pass. The pass is created when you press "
    "Reveal and is shown only once: this page cannot show it again."
)
REVEAL_BUTTON = "Reveal the pass"
REVEAL_HINT = "Pressing the button creates the pass now and records that you revealed it."

# --- the revealed pass ----------------------------------------------------------------------------------------
PASS_HEADING = "Temporary Access Pass for {target}"
PASS_LABEL = "Temporary Access Pass"
PASS_STARTS = "Valid from"
PASS_EXPIRES = "Expires at"
PASS_COUNTDOWN = "Time left"
PASS_USE = (
    "Give the pass to {target} only after you have verified who they are. They sign in with it at "
    "https://aka.ms/mysecurityinfo and register a passkey."
)
PASS_USE_ONCE = "The pass works for one sign-in only."
PASS_USE_MULTI = "The pass can be used several times until it expires."
PASS_NOT_AGAIN = "This pass will not be shown again. Do not write it down, send it by chat or email, or screenshot it."
COPY_BUTTON = "Copy the pass"
COPIED = "Copied."
COPY_FAILED = "Copying failed: select the pass and copy it by hand."
EXPIRED_NOW = "expired"

# --- already revealed -----------------------------------------------------------------------------------------
REVEALED_HEADING = "The pass for {target} was already revealed"
REVEALED_BODY = "Revealed at {at} by {by}. It is never shown twice. If it was lost, request a new MFA reset."
ALREADY_REVEALED_HEADING = "Someone revealed this pass a moment ago"

# --- refusals (status page: heading, body) ---------------------------------------------------------------------
REFUSALS: dict[str, tuple[str, str]] = {
    "easyAuthOff": (
        "Sign-in is not configured",
        "This page needs App Service Authentication (Easy Auth) in front of the app. An administrator must turn "
        "it on and set EASY_AUTH_ENABLED=true.",
    ),
    "signIn": ("Please sign in", "Sign in with your work account to open this pickup."),
    "notFound": ("Pickup not found", "This pickup link is not valid. Check the link in your notification."),
    "isTarget": (
        "You cannot pick up your own pass",
        "A pass for your own account must be handed to you by your manager or the helpdesk after they verify you.",
    ),
    "notDeliverer": (
        "This pickup is not yours",
        "Only the user's current manager or a member of the helpdesk group can reveal this pass.",
    ),
    "managerChanged": (
        "This pickup is not yours any more",
        "You are no longer this user's manager in the directory. Their current manager or the helpdesk can "
        "deliver the pass; or request a new MFA reset.",
    ),
    "closed": ("This pickup is closed", "The access was removed or the pickup was closed. Request a new MFA reset."),
    "expired": ("This pickup has expired", "Pickups stay open for {hours} hours. Request a new MFA reset."),
    "notDelivered": (
        "The MFA reset is no longer active",
        "The access package assignment behind this pickup is no longer delivered ({state}). Request a new MFA reset.",
    ),
    "csrf": (
        "The request could not be verified",
        "The reveal did not come from this page. Open the pickup link again and press Reveal.",
    ),
    "graphUnavailable": (
        "The directory could not be reached",
        "Nothing was revealed. Try again in a minute.",
    ),
}

# --- problems an administrator must fix (heading, body) --------------------------------------------------------
ADMIN_NOTE = "Nothing was revealed and the pickup stays open: reload this page after the change."
PROBLEMS: dict[str, tuple[str, str]] = {
    "tapDisabled": (
        "Temporary Access Pass is turned off in this tenant",
        "An administrator must enable the Temporary Access Pass method in Entra ID → Protection → Authentication "
        "methods → Policies.",
    ),
    "notInTargets": (
        "{target} cannot use a Temporary Access Pass",
        "The Temporary Access Pass policy does not include this user. An administrator must add the user (or a "
        "group they belong to) to the policy's targets, or remove them from its exclusions.",
    ),
    "lifetime": (
        "The pass lifetime does not fit the tenant's policy",
        "The Temporary Access Pass policy allows {low} to {high} minutes. An administrator must fix the policy's "
        "minimum and maximum lifetime or the TAP_LIFETIME_MINUTES setting.",
    ),
    "mintRefused": (
        "The pass could not be created",
        "Microsoft Graph refused to create the pass ({code}: {message}). An administrator must check the "
        "Temporary Access Pass policy and the app's permissions.",
    ),
    "mintFailed": (
        "The pass could not be created",
        "Microsoft Graph did not answer ({code}). Nothing was revealed; try again in a minute.",
    ),
}
