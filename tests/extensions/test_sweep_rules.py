"""The sweep's pure rules: which credentials count as a passkey registered after the reset, which passes are spent,
and which methods make a user "already onboarded"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from extensions.onboarding import strong_methods
from graph.methods import parse_method
from graph.passkeys import FIDO2, TAP, WINDOWS_HELLO, parse, passkeys_since

RESET = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def method(odata: str, created: datetime | None, **extra) -> dict:
    raw = {"@odata.type": odata, "id": f"id-{odata[-12:]}-{created}", **extra}
    if created is not None:
        raw["createdDateTime"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return raw


def credentials(*raws: dict) -> list:
    return [c for c in (parse(r) for r in raws) if c is not None]


def test_only_a_passkey_registered_at_or_after_the_reset_counts():
    """An older key, or one without a creation time, never completes onboarding."""
    found = credentials(
        method(FIDO2, RESET - timedelta(days=400)),
        method(FIDO2, None),
        method(FIDO2, RESET + timedelta(minutes=3), displayName="Authenticator"),
    )
    assert [c.label for c in passkeys_since(found, RESET, windows_hello=False)] == ["fido2 (Authenticator)"]


def test_windows_hello_counts_only_when_the_setting_allows_it():
    """Windows Hello for Business is a passkey only with SWEEP_COUNT_WINDOWS_HELLO."""
    found = credentials(method(WINDOWS_HELLO, RESET + timedelta(minutes=1)))
    assert passkeys_since(found, RESET, windows_hello=False) == []
    assert len(passkeys_since(found, RESET, windows_hello=True)) == 1


def test_expired_and_used_passes_are_spent_and_a_usable_one_is_not():
    """A pass is spent when Graph says Expired or OneTimeUsed."""
    spent = {
        reason: credentials(method(TAP, RESET, isUsable=reason == "EnabledByPolicy", methodUsabilityReason=reason))[0]
        for reason in ("Expired", "OneTimeUsed", "EnabledByPolicy", "NotYetValid")
    }
    assert {reason for reason, c in spent.items() if c.spent} == {"Expired", "OneTimeUsed"}


def test_other_method_types_are_not_read_as_credentials():
    """Phones and passwords are not the sweep's business."""
    assert credentials({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "m"}) == []


def test_strong_methods_ignore_the_password_email_and_a_pass_and_phones_only_when_told():
    """A new hire with a password, an email and a pass is not onboarded; a phone makes them so unless the tenant
    prepopulates phones (ONBOARDING_IGNORE_PHONES); an Authenticator registration always does."""
    weak = [
        parse_method({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "p"}),
        parse_method({"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": "e"}),
        parse_method({"@odata.type": TAP, "id": "t"}),
    ]
    assert strong_methods(weak) == []
    mobile = {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "m", "phoneType": "mobile"}
    phone = parse_method(mobile)
    assert strong_methods([*weak, phone]) == ["phone (mobile)"]
    assert strong_methods([*weak, phone], ignore_phones=True) == []
    app = {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "a", "displayName": "P"}
    assert len(strong_methods([*weak, phone, parse_method(app)], ignore_phones=True)) == 1
