"""Telecom entities: each type, its span and its normalised value."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from allo.assistant.nlu import EntityExtractor

TODAY = date(2025, 3, 15)
extractor = EntityExtractor()


def found(text: str) -> list[tuple[str, str, str]]:
    entities = extractor.extract(text, TODAY)
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
    return [(e.type, e.text, e.value) for e in entities]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ma Livebox 6 ne marche pas", ("box_model", "Livebox 6", "Livebox 6")),
        ("j'ai une livebox play", ("box_model", "livebox play", "Livebox Play")),
        ("le décodeur TV 4 est noir", ("box_model", "décodeur TV 4", "Décodeur TV 4")),
        ("appelez le 06 12 34 56 78", ("phone_number", "06 12 34 56 78", "+33612345678")),
        ("mon numéro +33 6 12 34 56 78", ("phone_number", "+33 6 12 34 56 78", "+33612345678")),
        ("fixe 01.23.45.67.89 svp", ("phone_number", "01.23.45.67.89", "+33123456789")),
        ("client C-12345678", ("customer_id", "C-12345678", "C-12345678")),
        ("contrat ct-87654321", ("contract_id", "ct-87654321", "CT-87654321")),
        ("ticket INC-482910", ("ticket_id", "INC-482910", "INC-482910")),
        ("prélevé de 39,99 €", ("amount", "39,99 €", "39.99")),
        ("une facture de 1 250 euros", ("amount", "1 250 euros", "1250.00")),
        ("payé 12.5 EUR", ("amount", "12.5 EUR", "12.50")),
        ("depuis le 12/03/2025", ("date", "12/03/2025", "2025-03-12")),
        ("le 1er avril", ("date", "le 1er avril", "2025-04-01")),
        ("depuis hier", ("date", "hier", "2025-03-14")),
        ("rendez-vous le 3 mars 2026", ("date", "le 3 mars 2026", "2026-03-03")),
    ],
)
def test_each_type(text: str, expected: tuple[str, str, str]) -> None:
    assert expected in found(text)


def test_lights_colour_and_state() -> None:
    assert found("ma box clignote rouge depuis ce matin") == [
        ("light_state", "clignote", "blinking"),
        ("light_colour", "rouge", "red"),
    ]
    assert ("light_colour", "blanc", "white") in found("voyant blanc fixe")
    assert ("light_state", "fixe", "steady") in found("voyant blanc fixe")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "je déménage au 12 bis rue de la Paix 75002 Paris et voilà",
            "12 bis rue de la Paix 75002 Paris",
        ),
        ("j'habite 5 avenue Foch, Lyon", "5 avenue Foch"),
        ("livraison au 8 rue Victor Hugo", "8 rue Victor Hugo"),
        ("nouvelle adresse : 3 allée des Tilleuls 69003 Lyon", "3 allée des Tilleuls 69003 Lyon"),
    ],
)
def test_addresses(text: str, address: str) -> None:
    assert ("address", address, address) in found(text)


def test_spans_do_not_overlap_and_keep_order() -> None:
    text = "Livebox 6 rouge, client C-12345678, rappel au 0612345678 le 02/04, 49,99 €"
    entities = extractor.extract(text, TODAY)
    assert [e.type for e in entities] == [
        "box_model", "light_colour", "customer_id", "phone_number", "date", "amount",
    ]  # fmt: skip
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))


def test_invalid_dates_and_plain_numbers_are_not_entities() -> None:
    assert found("le 31/02 à 3 heures, 12345") == []


def test_id_patterns_can_be_changed() -> None:
    custom = EntityExtractor(patterns={"contract_id": r"\bK\d{4}\b"})
    assert [(e.type, e.value) for e in custom.extract("contrat K1234", TODAY)] == [
        ("contract_id", "K1234")
    ]
