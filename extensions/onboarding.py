"""The new-hire onboarding package: which registered methods make a user "already onboarded", and its wording."""

from __future__ import annotations

from graph.methods import Method

# Methods that already satisfy MFA: a user holding one needs the MFA reset package, not onboarding. The password,
# an email (self-service password reset only) and a pass (temporary by design) do not count. A phone counts unless
# ONBOARDING_IGNORE_PHONES says the tenant prepopulates them (phones/) before a new hire's first sign-in: a phone
# someone registered can fetch the user a pass only through a manager who may not be the real one.
NOT_STRONG = {"password", "email", "temporaryAccessPass"}

SUMMARY = "New-hire onboarding: no methods were changed."


def strong_methods(methods: list[Method], *, ignore_phones: bool = False) -> list[str]:
    weak = NOT_STRONG | {"phone"} if ignore_phones else NOT_STRONG
    return [m.label for m in methods if m.type not in weak]


def denial(name: str, labels: list[str]) -> str:
    return (
        f"{name} already has MFA methods registered ({', '.join(labels)}); "
        "request the MFA reset package instead of onboarding."
    )
