"""Personal data out before a text leaves for an external model, back in its answer.

One session per request, so that a value gets the same placeholder in the question and
in every passage::

    session = Redactor().session()
    question = session.redact(question_text).text
    passages = [r.text for r in session.redact_many(passage_texts)]
    answer = session.restore(model_answer)          # or, as the answer streams:
    restorer = session.restorer()
    chunks = [restorer.feed(delta) for delta in stream] + [restorer.flush()]

Placeholders read ``[TEL_1]``, ``[EMAIL_1]``, ``[IBAN_1]``… (``LABELS``): short, upper
case, bracketed, so a model copies them verbatim. The same original string gets the
same placeholder throughout a session (two spellings of one number get two).

A text may already hold strings shaped like placeholders (a customer typing
"[TEL_1]"): the session never issues those, and one that equals a placeholder issued
earlier in the session is itself replaced by a fresh placeholder that restores to it.
So ``restore(redact(x).text) == x`` for every ``x``, and restoring never touches a
placeholder the session did not issue.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from allo.gateway.pii.detector import Finding, PiiDetector, PiiKind

#: the word in a placeholder of each kind: ``[TEL_1]``
LABELS: Mapping[PiiKind, str] = MappingProxyType(
    {
        PiiKind.PHONE: "TEL",
        PiiKind.EMAIL: "EMAIL",
        PiiKind.IBAN: "IBAN",
        PiiKind.NIR: "NIR",
        PiiKind.CARD: "CARTE",
        PiiKind.CUSTOMER_ID: "CLIENT",
        PiiKind.CONTRACT_ID: "CONTRAT",
        PiiKind.ADDRESS: "ADRESSE",
        PiiKind.PERSON: "PERSONNE",
    }
)
_KINDS = {label: kind for kind, label in LABELS.items()}
_PLACEHOLDER = re.compile(r"\[(" + "|".join(LABELS.values()) + r")_(\d{1,9})\]")
_LONGEST = max(len(label) for label in LABELS.values())


def _restore(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with each placeholder of ``mapping`` replaced, in one pass."""
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def _may_become_placeholder(tail: str) -> bool:
    """Whether more text after ``tail`` (which starts with "[") could make a placeholder."""
    match = re.fullmatch(r"\[([A-Z]*)(?:_(\d*))?", tail)
    if match is None:
        return False
    letters, digits = match.groups()
    if digits is None:
        return len(letters) <= _LONGEST and any(
            label.startswith(letters) for label in LABELS.values()
        )
    return letters in _KINDS and len(digits) < 9


class StreamingRestorer:
    """Restores an answer fed in pieces; holds back a placeholder cut between pieces.

    ``feed`` returns what can be shown now; ``flush`` what is left at the end.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = mapping
        self._pending = ""

    def feed(self, delta: str) -> str:
        """The restored text up to a trailing partial placeholder, which waits."""
        buffer = self._pending + delta
        cut = buffer.rfind("[")
        if cut != -1 and _may_become_placeholder(buffer[cut:]):
            self._pending, buffer = buffer[cut:], buffer[:cut]
        else:
            self._pending = ""
        return _restore(buffer, self._mapping)

    def flush(self) -> str:
        """What was held back (the stream ended inside something placeholder-like)."""
        rest, self._pending = self._pending, ""
        return _restore(rest, self._mapping)


@dataclass(frozen=True, slots=True)
class Redaction:
    """A redacted text, the originals of its placeholders and how many of each kind.

    ``findings`` are positions in the original text. ``mapping`` and ``findings`` stay
    out of ``repr`` so that logging a redaction does not log the personal data.
    """

    text: str
    mapping: Mapping[str, str] = field(repr=False)
    counts: Mapping[PiiKind, int]
    findings: tuple[Finding, ...] = field(repr=False)

    def restore(self, text: str) -> str:
        """``text`` (a model's answer) with this redaction's placeholders put back."""
        return _restore(text, self.mapping)

    def restorer(self) -> StreamingRestorer:
        """A restorer for an answer that arrives in pieces."""
        return StreamingRestorer(self.mapping)


class RedactionSession:
    """Redacts the texts of one request with one shared placeholder mapping.

    Not thread-safe: one session per request.
    """

    def __init__(self, detector: PiiDetector) -> None:
        self._detector = detector
        self._placeholders: dict[tuple[PiiKind, str], str] = {}
        self._originals: dict[str, str] = {}
        self._next: Counter[str] = Counter()
        self._reserved: set[str] = set()
        self._counts: Counter[PiiKind] = Counter()

    @property
    def counts(self) -> Mapping[PiiKind, int]:
        """How many findings of each kind the session's texts held, all texts together."""
        return MappingProxyType(dict(self._counts))

    @property
    def mapping(self) -> Mapping[str, str]:
        """Every placeholder issued so far and its original (read-only, live)."""
        return MappingProxyType(self._originals)

    def redact(self, text: str) -> Redaction:
        """``text`` with its personal data replaced by this session's placeholders."""
        literals = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
        self._reserved.update(text[start:end] for start, end in literals)
        findings = tuple(
            f
            for f in self._detector.find(text)
            if not any(f.start < end and start < f.end for start, end in literals)
        )
        spans = [(f.start, f.end, f.kind) for f in findings]
        for start, end in literals:
            if text[start:end] in self._originals:  # the same as one of ours: escape it
                label = _PLACEHOLDER.fullmatch(text, start, end)
                assert label is not None
                spans.append((start, end, _KINDS[label.group(1)]))
        pieces, used, position = [], {}, 0
        for start, end, kind in sorted(spans):
            placeholder = self._placeholder(kind, text[start:end])
            used[placeholder] = self._originals[placeholder]
            pieces += [text[position:start], placeholder]
            position = end
        pieces.append(text[position:])
        counts = Counter(f.kind for f in findings)
        self._counts.update(counts)
        return Redaction(
            text="".join(pieces),
            mapping=MappingProxyType(used),
            counts=MappingProxyType(dict(counts)),
            findings=findings,
        )

    def redact_many(self, texts: Iterable[str]) -> list[Redaction]:
        """Each text redacted in turn, sharing this session's placeholders."""
        return [self.redact(text) for text in texts]

    def restore(self, text: str) -> str:
        """``text`` with every placeholder issued by this session put back."""
        return _restore(text, self._originals)

    def restorer(self) -> StreamingRestorer:
        """A restorer for a streamed answer, aware of every placeholder of the session."""
        return StreamingRestorer(self._originals)

    def _placeholder(self, kind: PiiKind, original: str) -> str:
        key = (kind, original)
        if key not in self._placeholders:
            label = LABELS[kind]
            while True:
                self._next[label] += 1
                placeholder = f"[{label}_{self._next[label]}]"
                if placeholder not in self._reserved:
                    break
            self._placeholders[key] = placeholder
            self._originals[placeholder] = original
        return self._placeholders[key]


class Redactor:
    """Makes redaction sessions over one ``PiiDetector`` (all kinds, with names, by default).

    Cheap to build; ``warm_up()`` loads the models (else the first text does).
    """

    def __init__(self, detector: PiiDetector | None = None) -> None:
        self.detector = detector if detector is not None else PiiDetector()

    def warm_up(self) -> None:
        """Load the detector's models now rather than on the first text."""
        self.detector.warm_up()

    def session(self) -> RedactionSession:
        """A new session: one per request, its texts share their placeholders."""
        return RedactionSession(self.detector)

    def redact(self, text: str) -> Redaction:
        """One text on its own (a session of one)."""
        return self.session().redact(text)
