"""Precision and recall of a ``PiiDetector`` on a labelled JSONL set.

One item a line: ``{"text": "...", "entities": [{"kind": "PHONE", "start": 3, "end": 17}]}``
(offsets in characters of ``text``, end excluded, kinds of ``PiiKind``).

Two ways to count a finding right, each reported per kind, overall and over the
structured kinds (``STRUCTURED_KINDS``):

- ``exact``: same kind, same start, same end;
- ``overlap``: same kind and at least one character in common. A labelled span is
  recalled when a finding of its kind overlaps it; a finding is precise when it
  overlaps a labelled span of its kind.

Precision is ``None`` when nothing was found, recall ``None`` when nothing was labelled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allo.errors import InvalidInputError
from allo.gateway.pii.detector import STRUCTURED_KINDS, Finding, PiiDetector, PiiKind


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A text and the personal data a person marked in it."""

    text: str
    entities: tuple[Finding, ...]


def load_labelled(path: Path) -> list[LabelledText]:
    """Read a labelled set; ``InvalidInputError`` names the line of any bad item."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(_item(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"{path}:{number}: not a labelled item ({exc}); expected "
                f'{{"text": ..., "entities": [{{"kind": "PHONE", "start": 0, "end": 10}}]}}'
            ) from exc
    return items


def _item(raw: dict[str, Any]) -> LabelledText:
    text = raw["text"]
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    entities = []
    for entity in raw["entities"]:
        start, end = int(entity["start"]), int(entity["end"])
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span {start}:{end} outside the text of {len(text)} characters")
        entities.append(Finding(PiiKind(entity["kind"]), start, end, 1.0))
    return LabelledText(text, tuple(sorted(entities, key=lambda e: e.start)))


@dataclass(slots=True)
class Counts:
    """True positives, false positives, false negatives of one kind (or group)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def as_dict(self) -> dict[str, Any]:
        found, labelled = self.tp + self.fp, self.tp + self.fn
        return {
            "precision": round(self.tp / found, 4) if found else None,
            "recall": round(self.tp / labelled, 4) if labelled else None,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def _exact(found: Sequence[Finding], gold: Sequence[Finding], kind: PiiKind) -> Counts:
    predicted = {(f.start, f.end) for f in found if f.kind is kind}
    labelled = {(g.start, g.end) for g in gold if g.kind is kind}
    hit = len(predicted & labelled)
    return Counts(hit, len(predicted) - hit, len(labelled) - hit)


def _overlap(found: Sequence[Finding], gold: Sequence[Finding], kind: PiiKind) -> Counts:
    predicted = [f for f in found if f.kind is kind]
    labelled = [g for g in gold if g.kind is kind]

    def touches(a: Finding, b: Finding) -> bool:
        return a.start < b.end and b.start < a.end

    recalled = sum(1 for g in labelled if any(touches(g, f) for f in predicted))
    precise = sum(1 for f in predicted if any(touches(f, g) for g in labelled))
    return Counts(recalled, len(predicted) - precise, len(labelled) - recalled)


def evaluate(
    detector: PiiDetector,
    items: Iterable[LabelledText],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Scores of ``detector`` on ``items``: ``exact`` and ``overlap`` per kind and overall.

    Also ``items`` and ``seconds`` (detection only: the models are warmed up before).
    ``mistakes`` lists the items behind the numbers.
    """
    detector.warm_up()
    matchers = {"exact": _exact, "overlap": _overlap}
    per_kind = {name: {kind: Counts() for kind in PiiKind} for name in matchers}
    count, seconds = 0, 0.0
    for item in items:
        started = time.perf_counter()
        found = detector.find(item.text)
        seconds += time.perf_counter() - started
        count += 1
        for name, match in matchers.items():
            for kind in PiiKind:
                per_kind[name][kind].add(match(found, item.entities, kind))
        if progress:
            progress(1)
    result: dict[str, Any] = {"items": count, "seconds": round(seconds, 3)}
    for name in matchers:
        overall, structured = Counts(), Counts()
        for kind, counts in per_kind[name].items():
            overall.add(counts)
            if kind in STRUCTURED_KINDS:
                structured.add(counts)
        result[name] = {
            "overall": overall.as_dict(),
            "structured": structured.as_dict(),
            "per_kind": {kind.value: c.as_dict() for kind, c in per_kind[name].items()},
        }
    return result


def mistakes(detector: PiiDetector, items: Iterable[LabelledText]) -> list[dict[str, Any]]:
    """Items where the findings differ from the labels (exact match), to read them."""
    out = []
    for item in items:
        found = {(f.kind, f.start, f.end) for f in detector.find(item.text)}
        gold = {(g.kind, g.start, g.end) for g in item.entities}
        if found != gold:
            out.append(
                {
                    "text": item.text,
                    "missed": [(k.value, item.text[s:e]) for k, s, e in sorted(gold - found)],
                    "wrong": [(k.value, item.text[s:e]) for k, s, e in sorted(found - gold)],
                }
            )
    return out
