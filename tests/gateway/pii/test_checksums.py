"""Checksums of IBANs, NIRs and card numbers on published examples, valid and not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allo.gateway.pii.recognizers import (
    IBAN_LENGTHS,
    card_is_valid,
    iban_is_valid,
    luhn_is_valid,
    nir_is_valid,
    nir_key,
)


@pytest.mark.parametrize(
    "iban",
    [
        "FR14 2004 1010 0505 0001 3M02 606",  # the ECBS example, a letter in the account
        "FR7630006000011234567890189",
        "fr76 3000 6000 0112 3456 7890 189",
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "BE68 5390 0754 7034",
        "CH93 0076 2011 6238 5295 7",
        "NL91 ABNA 0417 1643 00",
    ],
)
def test_valid_ibans(iban: str) -> None:
    assert iban_is_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "FR15 2004 1010 0505 0001 3M02 606",  # check digits off by one
        "FR14 2004 1010 0505 0001 3M02 607",  # last digit changed
        "FR14 2004 1010 0505 0001 3M02 60",  # one character short for FR
        "DE89 3704 0044 0532 0130 000",  # one too many for DE
        "XX89 3704 0044 0532 0130 00",  # no such country
        "FR76-3000-6000-0112-3456-7890-189x",
        "",
    ],
)
def test_invalid_ibans(iban: str) -> None:
    assert not iban_is_valid(iban)


def test_iban_lengths_cover_france_and_its_overseas_territories() -> None:
    assert {IBAN_LENGTHS[c] for c in ("FR", "GP", "MQ", "RE", "NC", "PF", "MC")} == {27}


def test_nir_key_of_the_published_example() -> None:
    assert nir_key("2 55 08 14 168 025") == 38
    assert nir_is_valid("2 55 08 14 168 025 38")
    assert nir_is_valid("255081416802538")
    assert nir_is_valid("2.55.08.14.168.025.38")


@pytest.mark.parametrize(("department", "offset"), [("2A", 1_000_000), ("2B", 2_000_000)])
def test_corsican_nir_keys_follow_the_official_rule(department: str, offset: int) -> None:
    """2A and 2B: the key of the number read with 20, minus 1 (2A) or 2 (2B) million."""
    first13 = f"18505{department}123456"
    expected = 97 - (int(first13.replace(department, "20")) - offset) % 97
    assert nir_key(first13) == expected
    assert nir_is_valid(f"{first13}{expected:02d}")
    assert nir_is_valid(f"1 85 05 {department.lower()} 123 456 {expected:02d}")
    assert not nir_is_valid(f"{first13}{(expected % 97) + 1:02d}")


@pytest.mark.parametrize(
    "nir",
    [
        "2 55 08 14 168 025 39",  # wrong key
        "5 55 08 14 168 025 38",  # no sex 5
        "2 55 13 14 168 025 38",  # no month 13
        "2 55 08 14 168 025",  # no key
        "2 55 08 2C 168 025 38",  # no department 2C
    ],
)
def test_invalid_nirs(nir: str) -> None:
    assert not nir_is_valid(nir)


def test_nir_key_refuses_what_is_not_13_digits() -> None:
    with pytest.raises(ValueError, match="13 digits"):
        nir_key("12345")


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",  # Visa test numbers
        "4012888888881881",
        "4222222222222",  # Visa, 13 digits
        "5555 5555 5555 4444",  # Mastercard
        "2223 0031 2200 3222",  # Mastercard 2-series
        "3782 822463 10005",  # Amex 4-6-5
        "6011-1111-1111-1117",  # Discover
        "3530 1113 3330 0000",  # JCB
    ],
)
def test_valid_cards(card: str) -> None:
    assert luhn_is_valid(card)
    assert card_is_valid(card)


@pytest.mark.parametrize(
    ("card", "why"),
    [
        ("4111 1111 1111 1112", "Luhn"),
        ("0000 0000 0000 0000", "one repeated digit"),
        ("8933 0123 4567 8901 236", "SIM number (ICCID), issuer 8"),
        ("7328 2932 0000 74", "SIRET-like, issuer 7"),
        ("3782 8224 6310 0052", "Amex prefix with 16 digits"),
        ("411111111111111", "Visa prefix with 15 digits"),
        ("4111-1111-1111-111a", "not digits"),
    ],
)
def test_invalid_cards(card: str, why: str) -> None:
    assert not card_is_valid(card), why


def test_luhn_on_the_textbook_number() -> None:
    assert luhn_is_valid("79927398713")
    assert not luhn_is_valid("79927398710")


@given(st.text(max_size=40))
def test_checksums_never_raise(text: str) -> None:
    for check in (iban_is_valid, nir_is_valid, luhn_is_valid, card_is_valid):
        check(text)


def test_checksums_refuse_digits_that_are_not_ascii() -> None:
    assert not luhn_is_valid("4111 1111 1111 111²")
    assert not card_is_valid("٤١١١١١١١١١١١١١١١")  # Arabic-Indic digits
    assert not iban_is_valid("FR١٤ 2004 1010 0505 0001 3M02 606")
