"""The normalisation table: national and international forms, 00/011 prefixes, extensions, punctuation, garbage."""

from __future__ import annotations

import pytest

from phones.normalize import normalize, same_number

# (raw, default region, expected Graph number or None for invalid)
TABLE = [
    # United States / NANP
    ("+1 (206) 555-0102", "US", "+1 2065550102"),
    ("206-555-0102", "US", "+1 2065550102"),
    ("+1 425 555 0199 ext. 123", "US", "+1 4255550199x123"),
    ("206-555-0102 #45", "US", "+1 2065550102x45"),
    ("+1 206 555 0102x45", "US", "+1 2065550102x45"),
    ("+12065550102", None, "+1 2065550102"),
    ("011 44 20 7946 0018", "US", "+44 2079460018"),
    # United Kingdom
    ("+44 20 7946 0018", "US", "+44 2079460018"),
    ("020 7946 0018", "GB", "+44 2079460018"),
    ("0044 20 7946 0018", "DE", "+44 2079460018"),
    # Germany
    ("0151 23456789", "DE", "+49 15123456789"),
    ("+49 30 901820", "US", "+49 30901820"),
    ("030 901820", "DE", "+49 30901820"),
    ("0049-30-901820", "FR", "+49 30901820"),
    # France
    ("06 12 34 56 78", "FR", "+33 612345678"),
    ("+33 1 42 68 53 00", "US", "+33 142685300"),
    # Japan
    ("03-1234-5678", "JP", "+81 312345678"),
    ("+81 90 1234 5678", None, "+81 9012345678"),
    # Australia
    ("0412 345 678", "AU", "+61 412345678"),
    ("+61 412 345 678", "US", "+61 412345678"),
    # India
    ("98765 43210", "IN", "+91 9876543210"),
    ("+91 98765 43210", "US", "+91 9876543210"),
    # Brazil
    ("(11) 91234-5678", "BR", "+55 11912345678"),
    ("+55 11 91234-5678", "US", "+55 11912345678"),
    # Spain
    ("612345678", "ES", "+34 612345678"),
    ("+34 612 34 56 78", "US", "+34 612345678"),
    # Sweden
    ("070-123 45 67", "SE", "+46 701234567"),
    ("+46 70 123 45 67", None, "+46 701234567"),
    # garbage and invalid numbers
    ("not a number", "US", None),
    ("12", "US", None),
    ("0123", "US", None),
    ("+999 123", "US", None),
    ("555-0102", "US", None),
    ("+1 555 555 5555", "US", None),
    ("2065550102", None, None),  # national form without a default region
    ("07700 900123", "GB", None),  # Ofcom drama range: possible length, not a valid number
]


def test_the_table_covers_enough_numbers_and_countries():
    countries = {expected.split(" ")[0] for _, _, expected in TABLE if expected}
    assert len(TABLE) >= 30
    assert len(countries) >= 8


@pytest.mark.parametrize(("raw", "region", "expected"), TABLE)
def test_normalise(raw: str, region: str | None, expected: str | None):
    result = normalize(raw, region)
    assert result.number == expected
    if expected is None:
        assert result.reason, "an invalid number must say why"
    else:
        assert result.reason is None


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_empty_attribute_is_empty_not_invalid(raw):
    result = normalize(raw, "US")
    assert result.empty
    assert result.number is None


def test_same_number_ignores_spacing_only():
    assert same_number("+1 2065550102", "+1 206 555 0102")
    assert not same_number("+1 2065550102", "+1 2065550103")
    assert not same_number("+1 2065550102x1", "+1 2065550102")
