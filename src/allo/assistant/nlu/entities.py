"""Telecom entities found by rules and gazetteers, each with its span and a normalised value.

| type | examples | value |
|---|---|---|
| ``box_model`` | Livebox 6, livebox6, Livebox Play, décodeur TV 4 | canonical name, "Livebox 6" |
| ``light_colour`` | rouge, orange, blanc, vert, bleu (also "rouges") | "red", "orange", ... |
| ``light_state`` | clignote, clignotant, fixe, éteint, allumé | "blinking", "steady", "off", "on" |
| ``phone_number`` | 06 12 34 56 78, +33 6 12 34 56 78, 0033612345678 | E.164, "+33612345678" |
| ``customer_id`` | C-12345678 (the format printed on invoices) | "C-12345678" |
| ``contract_id`` | CT-12345678 (demo format; ``patterns`` changes it) | "CT-12345678" |
| ``ticket_id`` | INC-123456 (incident), REC-123456 (complaint) | upper case |
| ``date`` | 12/03/2025, 12 mars 2025, 3 avril, aujourd'hui, hier, demain | ISO date when known |
| ``amount`` | 39,99 €, 40 euros, 12.5 EUR | "39.99" (euros, 2 decimals) |
| ``address`` | 12 rue de la Paix 75002 Paris, 3 bis avenue Foch | the matched text |

Relative dates ("hier") are resolved against ``today``, given to ``extract`` (an
injected clock keeps tests deterministic). Overlapping matches keep the earliest, then
the longest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

_MONTHS = {
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}  # fmt: skip
_RELATIVE = {
    "aujourd'hui": 0, "aujourd’hui": 0, "today": 0, "hier": -1, "yesterday": -1,
    "avant-hier": -2, "demain": 1, "tomorrow": 1, "après-demain": 2,
}  # fmt: skip
_COLOURS = {
    "rouge": "red", "orange": "orange", "blanc": "white", "blanche": "white",
    "vert": "green", "verte": "green", "bleu": "blue", "bleue": "blue", "red": "red",
    "white": "white", "green": "green", "blue": "blue", "violet": "purple",
}  # fmt: skip
_STATES = {
    "clignote": "blinking", "clignotent": "blinking", "clignotant": "blinking",
    "clignotante": "blinking", "clignotants": "blinking", "blinking": "blinking",
    "fixe": "steady", "steady": "steady", "éteint": "off", "éteinte": "off",
    "éteints": "off", "eteint": "off", "off": "off", "allumé": "on", "allumée": "on",
    "allumés": "on",
}  # fmt: skip

#: the documented identifier formats; pass ``patterns`` to ``EntityExtractor`` to change
ID_PATTERNS: Mapping[str, str] = {
    "customer_id": r"\bC-?\d{8}\b",
    "contract_id": r"\bCT-?\d{8}\b",
    "ticket_id": r"\b(?:INC|REC)-?\d{6}\b",
}

_BOX = re.compile(
    r"\b(?:(?P<live>live\s?box)\s?(?P<lmodel>[1-7]|play|up|pro|fibre|s)?"
    r"|(?P<dec>d[ée]codeur)(?:\s+tv)?\s?(?P<dmodel>uhd|[1-7])\b)",
    re.IGNORECASE,
)
_COLOUR = re.compile(r"\b(" + "|".join(_COLOURS) + r")s?\b", re.IGNORECASE)
_STATE = re.compile(r"(?<!\w)(" + "|".join(_STATES) + r")(?!\w)", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)33[\s.-]?(?:\(0\))?\s?|0)([1-9](?:[\s.-]?\d{2}){4})(?!\d)"
)
_AMOUNT = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[.,](\d{1,2}))?\s?"
    r"(€|eur\b|euros?\b)",
    re.IGNORECASE,
)
_DATE_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?\b")
_DATE_WORDS = re.compile(
    r"\b(?:(?:le\s+)?(1er|\d{1,2})\s+(" + "|".join(_MONTHS) + r")(?:\s+(\d{4}))?)\b",
    re.IGNORECASE,
)
_DATE_RELATIVE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(w) for w in _RELATIVE) + r")(?!\w)", re.IGNORECASE
)
_ADDRESS = re.compile(
    r"\b\d{1,4}(?:\s?(?:bis|ter|b))?,?\s+"
    r"(?:rue|avenue|av\.|boulevard|bd|place|impasse|all[ée]e|chemin|route|quai|cours|"
    r"square|passage|esplanade|lieu-dit)\b"
    r"[^\n,;.!?\d]{2,60}?"
    r"(?:,?\s+\d{5}(?:\s+(?-i:[A-ZÀ-Ý][\w'’-]*(?:[\s-][A-ZÀ-Ý][\w'’-]*)*))?)?"
    r"(?=\s*$|\s*[\n,;.!?)]|\s+(?:et|depuis|mais|pour|car|donc|je|j'|j’|à partir|svp)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity: its type, the span ``text[start:end]`` and a normalised value."""

    type: str
    start: int
    end: int
    text: str
    value: str


class EntityExtractor:
    """Rule- and gazetteer-based extraction; ``patterns`` override ``ID_PATTERNS``."""

    def __init__(self, patterns: Mapping[str, str] | None = None) -> None:
        merged = dict(ID_PATTERNS) | dict(patterns or {})
        self._ids = {name: re.compile(rx, re.IGNORECASE) for name, rx in merged.items()}

    def warm_up(self) -> None:
        """Nothing to load: rules only."""

    def extract(self, text: str, today: date | None = None) -> list[Entity]:
        """Non-overlapping entities of ``text`` in order of appearance."""
        today = today or date.today()
        found: list[Entity] = []
        for name, pattern in self._ids.items():
            found += _matches(text, pattern, name, lambda m: m.group(0).upper())
        finders: list[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
            ("phone_number", _PHONE, _phone),
            ("amount", _AMOUNT, _amount),
            ("address", _ADDRESS, lambda m: " ".join(m.group(0).split())),
            ("date", _DATE_WORDS, lambda m: _date_words(m, today)),
            ("date", _DATE_NUMERIC, lambda m: _date_numeric(m, today)),
            ("date", _DATE_RELATIVE, lambda m: _relative(m, today)),
            ("box_model", _BOX, _box),
            ("light_colour", _COLOUR, lambda m: _COLOURS[m.group(1).lower()]),
            ("light_state", _STATE, lambda m: _STATES[m.group(1).lower()]),
        ]
        for name, pattern, normalise in finders:
            found += _matches(text, pattern, name, normalise)
        return _resolve(found)


def _matches(
    text: str,
    pattern: re.Pattern[str],
    name: str,
    normalise: Callable[[re.Match[str]], str | None],
) -> list[Entity]:
    out = []
    for match in pattern.finditer(text):
        value = normalise(match)
        if value is not None:
            out.append(Entity(name, match.start(), match.end(), match.group(0), value))
    return out


def _resolve(found: list[Entity]) -> list[Entity]:
    """Keep the first found (rule order is priority) among overlapping entities."""
    kept: list[Entity] = []
    for entity in found:
        if all(entity.end <= other.start or entity.start >= other.end for other in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e.start)


def _phone(match: re.Match[str]) -> str:
    return "+33" + re.sub(r"\D", "", match.group(1))


def _amount(match: re.Match[str]) -> str:
    units = re.sub(r"\D", "", match.group(1))
    cents = (match.group(2) or "0").ljust(2, "0")
    return f"{int(units)}.{cents}"


def _box(match: re.Match[str]) -> str:
    if match.group("live"):
        model = match.group("lmodel")
        if not model:
            return "Livebox"
        return f"Livebox {model.upper() if len(model) == 1 else model.capitalize()}"
    return f"Décodeur TV {match.group('dmodel').upper()}"


def _year(raw: str | None, today: date) -> int:
    if not raw:
        return today.year
    year = int(raw)
    return year + 2000 if year < 100 else year


def _safe_date(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _date_numeric(match: re.Match[str], today: date) -> str | None:
    day, month, year = match.group(1), match.group(2), match.group(3)
    return _safe_date(_year(year, today), int(month), int(day))


def _date_words(match: re.Match[str], today: date) -> str | None:
    day = 1 if match.group(1).lower() == "1er" else int(match.group(1))
    return _safe_date(_year(match.group(3), today), _MONTHS[match.group(2).lower()], day)


def _relative(match: re.Match[str], today: date) -> str:
    return (today + timedelta(days=_RELATIVE[match.group(1).lower()])).isoformat()
