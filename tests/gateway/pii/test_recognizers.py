"""Each French recognizer on its own (through presidio), spans checked to the character."""

from __future__ import annotations

import pytest
from presidio_analyzer import PatternRecognizer

from allo.gateway.pii.recognizers import (
    CardRecognizer,
    EmailRecognizer,
    FrAddressRecognizer,
    FrPhoneRecognizer,
    IbanRecognizer,
    NirRecognizer,
    OperatorIdRecognizer,
    TitledNameRecognizer,
    french_recognizers,
)

IBAN = "FR14 2004 1010 0505 0001 3M02 606"
CARD = "4111 1111 1111 1111"
NIR = "2 55 08 14 168 025 38"


def spans(recognizer: PatternRecognizer, text: str) -> list[str]:
    entity = recognizer.supported_entities[0]
    found = sorted(recognizer.analyze(text, [entity]), key=lambda r: r.start)
    return [text[r.start : r.end] for r in found]


@pytest.mark.parametrize(
    "phone",
    [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "0612345678",
        "01 45 22 87 61",
        "09 72 14 38 06",
        "+33 6 12 34 56 78",
        "+33612345678",
        "+33 (0)6 12 34 56 78",
        "+33 (0) 6 12 34 56 78",
        "0033 6 12 34 56 78",
        "0033612345678",
        "(+33) 6 12 34 56 78",
        "06\u00a012\u00a034\u00a056\u00a078",
        "06/12/34/56/78",
    ],
)
def test_phone_spellings(phone: str) -> None:
    assert spans(FrPhoneRecognizer(), f"appelez le {phone}, merci") == [phone]
    assert spans(FrPhoneRecognizer(), f"tel:{phone}") == [phone]


def test_phone_glued_to_a_word() -> None:
    assert spans(FrPhoneRecognizer(), "mon numero c le0645127788 merci") == ["0645127788"]


@pytest.mark.parametrize(
    "text",
    [
        "facture du 06/12/2024 de 39,99 €",
        "commande 1029384756",  # ten digits, no leading 0
        "06 12 34 56",  # eight digits
        "061234567890",  # twelve digits
        "00 12 34 56 78",  # 00 is no area
        "le 06/12 à 06h12",
        "SIRET 73282932000074",
    ],
)
def test_not_phones(text: str) -> None:
    assert spans(FrPhoneRecognizer(), text) == []


@pytest.mark.parametrize(
    "email",
    [
        "jean.dupont@orange.fr",
        "JEAN-MARC.LEBRUN@GMAIL.COM",
        "aurelie.fontaine+allo@gmail.com",
        "j.brun@entreprise-brun.fr",
        "hélène@exemple.fr",
        "a_b@sous.domaine.exemple.co.uk",
    ],
)
def test_emails(email: str) -> None:
    assert spans(EmailRecognizer(), f"écrivez à <{email}>.") == [email]


@pytest.mark.parametrize(
    "text", ["jean..dupont@orange.fr", ".jean@orange.fr", "jean@localhost", "@orange.fr", "a@b"]
)
def test_not_emails(text: str) -> None:
    assert spans(EmailRecognizer(), f"mail {text} svp") == []


@pytest.mark.parametrize(
    "iban",
    [
        IBAN,
        IBAN.replace(" ", ""),
        IBAN.lower(),
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "BE68 5390 0754 7034",
        "CH93 0076 2011 6238 5295 7",
    ],
)
def test_ibans(iban: str) -> None:
    assert spans(IbanRecognizer(), f"IBAN : {iban}, merci") == [iban]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # what follows an IBAN is not swallowed, whatever it is
        (f"{IBAN} 06 12 34 56 78", [IBAN]),
        (f"{IBAN} 75 ans", [IBAN]),
        (f"{IBAN} BIC AGRIFRPP", [IBAN]),
        (f"{IBAN}\nBIC", [IBAN]),
        (f"IBAN:{IBAN.replace(' ', '')};BIC:CCBPFRPPXXX", [IBAN.replace(" ", "")]),
        # two IBANs in a row stay two
        (f"{IBAN} {IBAN}", [IBAN, IBAN]),
        (f"{IBAN}, DE89 3704 0044 0532 0130 00", [IBAN, "DE89 3704 0044 0532 0130 00"]),
    ],
)
def test_ibans_keep_their_exact_span(text: str, expected: list[str]) -> None:
    assert spans(IbanRecognizer(), text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FR15 2004 1010 0505 0001 3M02 606",  # wrong check digits
        "FR14 2004 1010 0505 0001 3M02 60",  # too short
        "123FR14 2004 1010 0505 0001 3M02 606",  # glued to digits before
        "FR14 2004 1010 0505 0001 3M02 6061",  # glued to a digit after
    ],
)
def test_not_ibans(text: str) -> None:
    assert spans(IbanRecognizer(), text) == []


@pytest.mark.parametrize(
    "nir", [NIR, NIR.replace(" ", ""), NIR.replace(" ", "."), "2 55 08 14168 025 38"]
)
def test_nirs(nir: str) -> None:
    assert spans(NirRecognizer(), f"sécu {nir}.") == [nir]


def test_corsican_nir() -> None:
    first13 = "1850519123456"
    key = 97 - int(first13) % 97
    nir = f"1 85 05 2A 123 456 {key:02d}"
    assert spans(NirRecognizer(), f"né à Ajaccio, NIR {nir}") == [nir]


@pytest.mark.parametrize(
    "text", ["2 55 08 14 168 025 39", "2550814168025381", "12 55 08 14 168 025 38"]
)
def test_not_nirs(text: str) -> None:
    assert spans(NirRecognizer(), text) == []


@pytest.mark.parametrize(
    "card",
    [CARD, CARD.replace(" ", ""), CARD.replace(" ", "-"), "3782 822463 10005", "4222222222222"],
)
def test_cards(card: str) -> None:
    assert spans(CardRecognizer(), f"carte {card} exp 12/26") == [card]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{CARD} 12 26", [CARD]),  # expiry after the number is not merged into it
        (f"{CARD} 123", [CARD]),  # nor the security code
        (f"{CARD.replace(' ', '')} 0612345678", [CARD.replace(" ", "")]),
        (f"{CARD} / 5555 5555 5555 4444", [CARD, "5555 5555 5555 4444"]),
    ],
)
def test_cards_keep_their_exact_span(text: str, expected: list[str]) -> None:
    assert spans(CardRecognizer(), text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn
        "Référence de paiement 7845 1203 9921",
        "SIM n° 8933 0123 4567 8901 234",
        "Total 1 204,20 € pour 12 mois",
        "4111 1111-1111 1111",  # mixed separators: not one number
    ],
)
def test_not_cards(text: str) -> None:
    assert spans(CardRecognizer(), text) == []


def test_operator_ids_use_the_assistant_patterns() -> None:
    from allo.assistant.nlu.entities import ID_PATTERNS

    customer = OperatorIdRecognizer("CUSTOMER_ID", ID_PATTERNS["customer_id"])
    contract = OperatorIdRecognizer("CONTRACT_ID", ID_PATTERNS["contract_id"])
    text = "client C-12345678 (c12345678), contrat CT-87654321 / ct87654321, C-1234567"
    assert spans(customer, text) == ["C-12345678", "c12345678"]
    assert spans(contract, text) == ["CT-87654321", "ct87654321"]


@pytest.mark.parametrize(
    "address",
    [
        "12 rue de la Paix",
        "12 rue de la Paix 75002 Paris",
        "12 rue de la Paix, 75002 Paris",
        "4 bis avenue Jean Jaurès 31000 Toulouse",
        "33 av. de la République 13005 Marseille",
        "14 bd Gambetta, 06000 Nice",
        "8 rue de l'Église 59000 Lille",
        "3 impasse des peupliers 44300 nantes",
        "102 route de Saint-Malo, 35000 Rennes",
        "7 rue du Général de Gaulle 67000 Strasbourg",
        "12 bis rue Pasteur 63000 Clermont-Ferrand",
        "5 allée des Tilleuls",
    ],
)
def test_addresses(address: str) -> None:
    assert spans(FrAddressRecognizer(), f"j'habite au {address}. Merci") == [address]
    assert spans(FrAddressRecognizer(), f"{address} et je n'ai plus la fibre") == [address]


@pytest.mark.parametrize(
    "text",
    [
        "La rue est bloquée par les travaux",
        "J'habite rue de la Paix, au dernier étage.",  # no number
        "il y a 2 routes pour arriver chez moi",
        "Il reste 10 places pour l'atelier",
        "la place du marché est en travaux",
        "Livebox 6 et 2 décodeurs",
    ],
)
def test_not_addresses(text: str) -> None:
    assert spans(FrAddressRecognizer(), text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Merci de rappeler M. Mamadou Diallo au plus vite", ["Mamadou Diallo"]),
        ("Mme Martin appelle", ["Martin"]),
        ("Madame Anne-Sophie Meunier", ["Anne-Sophie Meunier"]),
        ("MONSIEUR DURAND", ["DURAND"]),
        ("Mr. Dupont et Mlle Faure", ["Dupont", "Faure"]),
        ("Monsieur Le Goff", []),  # "Le" is not read as a name: spaCy may find it
        ("Madame, Monsieur, je vous écris", []),
        ("monsieur souhaite résilier", []),
        ("Bonjour Madame Bonjour", []),
    ],
)
def test_titled_names(text: str, expected: list[str]) -> None:
    assert spans(TitledNameRecognizer(), text) == expected


def test_recognizers_for_a_subset_of_kinds() -> None:
    names = {r.supported_entities[0] for r in french_recognizers(["IBAN", "PHONE"])}
    assert names == {"IBAN", "PHONE"}
    assert all(r.supported_language == "fr" for r in french_recognizers(["ADDRESS"]))
