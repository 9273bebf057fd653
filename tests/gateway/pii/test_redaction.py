"""Redaction and restoration: placeholders, sessions, streaming, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allo.errors import InvalidInputError
from allo.gateway.pii import LABELS, PiiDetector, PiiKind, Redactor

IBAN = "FR14 2004 1010 0505 0001 3M02 606"
CARD = "4111 1111 1111 1111"
NIR = "2 55 08 14 168 025 38"
VALUES = [
    "06 12 34 56 78",
    "0612345678",
    "+33 6 12 34 56 78",
    "jean.dupont@orange.fr",
    IBAN,
    IBAN.replace(" ", ""),
    CARD,
    NIR,
    "C-12345678",
    "CT-87654321",
    "12 rue de la Paix 75002 Paris",
    "Mme Martin",
]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    """Patterns only: fast, deterministic (names after a title still found)."""
    return Redactor(PiiDetector(ner=False))


def test_one_text(redactor: Redactor) -> None:
    text = f"Je suis Mme Martin, tel 06 12 34 56 78, IBAN {IBAN}, mail jean@orange.fr."
    redaction = redactor.redact(text)
    assert redaction.text == (
        "Je suis Mme [PERSONNE_1], tel [TEL_1], IBAN [IBAN_1], mail [EMAIL_1]."
    )
    assert redaction.mapping == {
        "[PERSONNE_1]": "Martin",
        "[TEL_1]": "06 12 34 56 78",
        "[IBAN_1]": IBAN,
        "[EMAIL_1]": "jean@orange.fr",
    }
    assert redaction.counts == {
        PiiKind.PERSON: 1,
        PiiKind.PHONE: 1,
        PiiKind.IBAN: 1,
        PiiKind.EMAIL: 1,
    }
    assert [text[f.start : f.end] for f in redaction.findings] == list(redaction.mapping.values())
    assert redaction.restore(redaction.text) == text


def test_every_kind_has_a_label() -> None:
    assert set(LABELS) == set(PiiKind)
    assert len(set(LABELS.values())) == len(PiiKind)


def test_repr_does_not_show_personal_data(redactor: Redactor) -> None:
    redaction = redactor.redact("tel 06 12 34 56 78")
    assert "06 12" not in repr(redaction)
    assert "[TEL_1]" in repr(redaction)


def test_nothing_to_redact(redactor: Redactor) -> None:
    redaction = redactor.redact("La Livebox 6 clignote rouge depuis le 12/03/2025.")
    assert redaction.text == "La Livebox 6 clignote rouge depuis le 12/03/2025."
    assert redaction.mapping == {} and redaction.counts == {}


def test_same_value_same_placeholder_across_texts(redactor: Redactor) -> None:
    session = redactor.session()
    question = session.redact("Mon numéro 06 12 34 56 78 et 07 11 22 33 44 ne marchent plus")
    passages = session.redact_many(
        [
            "Le 07 11 22 33 44 est suspendu.",
            "Rappeler le 06 12 34 56 78 ou écrire à jean@orange.fr.",
            "Aucune donnée ici.",
        ]
    )
    assert question.text == "Mon numéro [TEL_1] et [TEL_2] ne marchent plus"
    assert [p.text for p in passages] == [
        "Le [TEL_2] est suspendu.",
        "Rappeler le [TEL_1] ou écrire à [EMAIL_1].",
        "Aucune donnée ici.",
    ]
    assert passages[0].mapping == {"[TEL_2]": "07 11 22 33 44"}
    assert dict(session.mapping) == {
        "[TEL_1]": "06 12 34 56 78",
        "[TEL_2]": "07 11 22 33 44",
        "[EMAIL_1]": "jean@orange.fr",
    }
    assert session.counts == {PiiKind.PHONE: 4, PiiKind.EMAIL: 1}
    answer = "Votre ligne [TEL_2] est suspendue ; [TEL_1] fonctionne. Écrivez à [EMAIL_1]."
    assert session.restore(answer) == (
        "Votre ligne 07 11 22 33 44 est suspendue ; 06 12 34 56 78 fonctionne. "
        "Écrivez à jean@orange.fr."
    )


def test_two_spellings_of_a_number_keep_their_own_placeholder(redactor: Redactor) -> None:
    text = "06 12 34 56 78 ou 0612345678"
    redaction = redactor.redact(text)
    assert redaction.text == "[TEL_1] ou [TEL_2]"
    assert redaction.restore(redaction.text) == text


def test_separate_redactions_do_not_share(redactor: Redactor) -> None:
    assert redactor.redact("07 11 22 33 44").text == "[TEL_1]"
    assert redactor.redact("06 12 34 56 78").text == "[TEL_1]"


def test_unknown_placeholders_in_an_answer_stay(redactor: Redactor) -> None:
    redaction = redactor.redact("tel 06 12 34 56 78")
    assert redaction.restore("[TEL_1], [TEL_9], [IBAN_1], [tel_1], [TEL_1 ]") == (
        "06 12 34 56 78, [TEL_9], [IBAN_1], [tel_1], [TEL_1 ]"
    )


# --- placeholders already in the input --------------------------------------------------


def test_a_customer_typing_a_placeholder_gets_it_back(redactor: Redactor) -> None:
    text = "J'ai reçu « [TEL_1] » par SMS, mon numéro est le 06 12 34 56 78"
    redaction = redactor.redact(text)
    assert redaction.text == "J'ai reçu « [TEL_1] » par SMS, mon numéro est le [TEL_2]"
    assert redaction.mapping == {"[TEL_2]": "06 12 34 56 78"}
    assert redaction.restore(redaction.text) == text
    assert redaction.restore("« [TEL_1] » vient de [TEL_2]") == (
        "« [TEL_1] » vient de 06 12 34 56 78"
    )


def test_a_later_text_with_one_of_our_placeholders_is_escaped(redactor: Redactor) -> None:
    session = redactor.session()
    first = session.redact("tel 06 12 34 56 78")
    second = session.redact("le client a écrit [TEL_1] et [TEL_7] et 07 11 22 33 44")
    assert first.text == "tel [TEL_1]"
    # [TEL_1] is ours: the literal becomes [TEL_2]; [TEL_7] is not: reserved, left as is
    assert second.text == "le client a écrit [TEL_2] et [TEL_7] et [TEL_3]"
    assert session.restore(second.text) == "le client a écrit [TEL_1] et [TEL_7] et 07 11 22 33 44"
    assert session.restore(first.text) == "tel 06 12 34 56 78"
    assert session.redact("[TEL_1] encore").text == "[TEL_2] encore"
    assert second.counts == {PiiKind.PHONE: 1}


def test_pii_inside_a_literal_placeholder_is_left_alone(redactor: Redactor) -> None:
    text = "[CLIENT_12345678] C-12345678"
    redaction = redactor.redact(text)
    assert redaction.text == "[CLIENT_12345678] [CLIENT_1]"
    assert redaction.restore(redaction.text) == text


# --- round trip -------------------------------------------------------------------------

_FILLER = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], max_codepoint=0x2FFF), max_size=12
)
_PIECE = st.one_of(
    _FILLER,
    st.sampled_from(VALUES),
    st.sampled_from(["[TEL_1]", "[TEL_2]", "[EMAIL_1]", "[IBAN_", "[", "]", "_1]", "[CARTE_1"]),
    st.sampled_from([" ", "\n", ", ", "\x00", "\u200b", "0", "-"]),
)
_TEXT = st.lists(_PIECE, max_size=12).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXT, min_size=1, max_size=3))
def test_restore_undoes_redact(redactor: Redactor, texts: list[str]) -> None:
    session = redactor.session()
    redactions = session.redact_many(texts)
    for text, redaction in zip(texts, redactions, strict=True):
        assert redaction.restore(redaction.text) == text
        assert session.restore(redaction.text) == text
    originals = list(session.mapping.values())
    assert len(set(originals)) == len(originals)  # one placeholder per value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.one_of(_FILLER, st.sampled_from(VALUES)), min_size=1, max_size=8))
def test_values_apart_from_other_text_never_leave(redactor: Redactor, pieces: list[str]) -> None:
    text = " | ".join(pieces)
    redaction = redactor.redact(text)
    for value in VALUES:
        if value in pieces:
            assert value not in redaction.text
    assert redaction.restore(redaction.text) == text


# --- streaming --------------------------------------------------------------------------


def test_streaming_restores_placeholders_split_at_every_position(redactor: Redactor) -> None:
    session = redactor.session()
    session.redact(f"tel 06 12 34 56 78, IBAN {IBAN}, 07 11 22 33 44, C-12345678")
    answer = "Ligne [TEL_1] ; IBAN [IBAN_1] [TEL_2][CLIENT_1] fin [x] [TEL_ [TEL_9] ["
    expected = session.restore(answer)
    assert "06 12 34 56 78" in expected and IBAN in expected and "C-12345678" in expected
    for cut in range(len(answer) + 1):
        restorer = session.restorer()
        out = restorer.feed(answer[:cut]) + restorer.feed(answer[cut:]) + restorer.flush()
        assert out == expected, cut
    for first in range(len(answer) + 1):
        for second in range(first, len(answer) + 1):
            restorer = session.restorer()
            pieces = [answer[:first], answer[first:second], answer[second:]]
            assert "".join(restorer.feed(p) for p in pieces) + restorer.flush() == expected


def test_streaming_one_character_at_a_time(redactor: Redactor) -> None:
    redaction = redactor.redact(f"carte {CARD}, sécu {NIR}")
    answer = "Carte [CARTE_1], NIR [NIR_1]."
    restorer = redaction.restorer()
    out = "".join(restorer.feed(char) for char in answer) + restorer.flush()
    assert out == f"Carte {CARD}, NIR {NIR}."


def test_streaming_holds_back_only_what_may_become_a_placeholder(redactor: Redactor) -> None:
    restorer = redactor.redact("tel 06 12 34 56 78").restorer()
    assert restorer.feed("Voici [") == "Voici "
    assert restorer.feed("TEL") == ""
    assert restorer.feed("_1") == ""
    assert restorer.feed("] ok [en promo]") == "06 12 34 56 78 ok [en promo]"
    assert restorer.feed("[TELE") == "[TELE"
    assert restorer.feed("[TEL_123456789") == "[TEL_123456789"
    assert restorer.feed("[TEL_1") == ""
    assert restorer.flush() == "[TEL_1"
    assert restorer.flush() == ""


# --- hostile input ----------------------------------------------------------------------


def test_a_huge_text_is_refused_not_sent(redactor: Redactor) -> None:
    with pytest.raises(InvalidInputError, match="over the limit"):
        redactor.redact("06 12 34 56 78 " * 70_000)


def test_control_characters_survive(redactor: Redactor) -> None:
    text = "\x00tel\x1b06 12 34 56 78\x07\r\n\u202eIBAN " + IBAN + "\x7f\ufeff"
    redaction = redactor.redact(text)
    assert redaction.text == "\x00tel\x1b[TEL_1]\x07\r\n\u202eIBAN [IBAN_1]\x7f\ufeff"
    assert redaction.restore(redaction.text) == text


def test_with_names_from_the_model() -> None:
    redactor = Redactor()
    redaction = redactor.redact("Bonjour, je suis Jean Dupont, mon numéro est le 06 12 34 56 78.")
    assert redaction.text == "Bonjour, je suis [PERSONNE_1], mon numéro est le [TEL_1]."
