"""The new-hire onboarding package: which registered methods make a user "already onboarded", and its wording."""

from __future__ import annotations

from graph.methods import Method

# Methods that already satisfy MFA: a user holding one needs the MFA reset package, not onboarding. The password,
# an email (self-service password reset only), a pass (temporary by design) and phones do not count: phones are
# what bulk prepopulation (phones/) gives users before their first sign-in, new hires included.
NOT_STRONG = {"password", "email", "temporaryAccessPass", "phone"}

SUMMARY = "New-hire onboarding: no methods were changed."


def strong_methods(methods: list[Method]) -> list[str]:
    return [m.label for m in methods if m.type not in NOT_STRONG]


def denial(name: str, labels: list[str]) -> str:
    return (
        f"{name} already has MFA methods registered ({', '.join(labels)}); "
        "request the MFA reset package instead of onboarding."
    )
