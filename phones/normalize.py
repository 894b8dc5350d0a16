"""Phone numbers from directory attributes into Graph's phone method format, with the `phonenumbers` library.

Graph wants `+{country code} {number}` with an optional `x{extension}`
(https://learn.microsoft.com/graph/api/resources/phoneauthenticationmethod): we write the national significant
number without spaces, e.g. `+44 2079460018`, `+1 4255550199x123`. Numbers without a country code are read in
the default region (PHONE_DEFAULT_REGION); an invalid number gives a reason and no number.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no valid country code (give +{country} or set PHONE_DEFAULT_REGION)",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


@dataclass(frozen=True)
class Normalized:
    raw: str | None
    number: str | None  # Graph's format, or None when the raw value is empty or invalid
    reason: str | None = None  # why it is invalid; None when valid or empty

    @property
    def empty(self) -> bool:
        return self.number is None and self.reason is None


def normalize(raw: str | None, default_region: str | None = "US") -> Normalized:
    """`raw` as Graph's `+{cc} {nsn}[x{ext}]`, or a reason why it cannot be."""
    text = (raw or "").strip()
    if not text:
        return Normalized(raw, None)
    region = (default_region or "").upper() or None
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return Normalized(raw, None, _PARSE_REASONS.get(exc.error_type, str(exc)))
    if not phonenumbers.is_possible_number(parsed):
        return Normalized(raw, None, "impossible length for its country")
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_number(parsed) or f"+{parsed.country_code}"
        return Normalized(raw, None, f"not a valid number in {where}")
    number = f"+{parsed.country_code} {phonenumbers.national_significant_number(parsed)}"
    if parsed.extension:
        number += f"x{parsed.extension}"
    return Normalized(raw, number)


def same_number(a: str | None, b: str | None) -> bool:
    """Graph may echo a number with different spacing: compare digits and extension only."""

    def key(value: str | None) -> str:
        return "".join(ch for ch in (value or "").lower() if ch.isdigit() or ch == "x")

    return key(a) == key(b)
