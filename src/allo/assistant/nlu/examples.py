"""Labelled utterances for intent classification, read from JSON lines, CSV or YAML.

Formats (several files combine; intent ``oos`` marks an out-of-scope example):

- JSON lines (``.jsonl``, ``.json``): one ``{"text": ..., "intent": ...}`` object a line;
- CSV (``.csv``, ``.tsv``): a header with a text column (``text``, ``utterance`` or
  ``sentence``) and a label column (``intent``, ``category`` or ``label``);
- YAML (``.yaml``, ``.yml``): ``intents: {name: [utterance, ...]}``, optionally
  with ``language: fr``.

Every problem is reported with the file and line (or row) to fix.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from allo.errors import InvalidInputError

OOS = "oos"
TEXT_COLUMNS = ("text", "utterance", "sentence")
LABEL_COLUMNS = ("intent", "category", "label")
_MAX_TEXT = 10_000


class ExamplesFileError(InvalidInputError):
    """An examples file that cannot be read as labelled utterances."""


@dataclass(frozen=True, slots=True)
class Example:
    """One utterance and its intent (``oos`` when out of scope)."""

    text: str
    intent: str

    @property
    def in_scope(self) -> bool:
        """Whether the example belongs to a real intent."""
        return self.intent != OOS


def _checked(text: object, intent: object, where: str) -> Example:
    if not isinstance(text, str) or not text.strip():
        raise ExamplesFileError(f"{where}: the text is missing or empty")
    if not isinstance(intent, str | int) or not str(intent).strip():
        raise ExamplesFileError(f"{where}: the intent is missing or empty")
    if len(text) > _MAX_TEXT:
        raise ExamplesFileError(f"{where}: the text is over {_MAX_TEXT} characters")
    return Example(" ".join(text.split()), str(intent).strip())


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ExamplesFileError(f"{path}: no such file; check the path") from exc
    except OSError as exc:
        raise ExamplesFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    if b"\x00" in data[:4096]:
        raise ExamplesFileError(f"{path}: binary file; give JSON lines, CSV or YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExamplesFileError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc


def _jsonl(path: Path, content: str) -> list[Example]:
    examples = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExamplesFileError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise ExamplesFileError(f'{where}: expected an object {{"text", "intent"}}')
        examples.append(_checked(record.get("text"), record.get("intent"), where))
    return examples


def _pick(header: Sequence[str], names: Sequence[str], path: Path, what: str) -> int:
    lowered = [name.strip().lower() for name in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise ExamplesFileError(
        f"{path}: no {what} column; the header must name one of {', '.join(names)} "
        f"(found: {', '.join(header) or 'nothing'})"
    )


def _csv(path: Path, content: str) -> list[Example]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = list(csv.reader(content.splitlines(), delimiter=delimiter))
    except csv.Error as exc:
        raise ExamplesFileError(f"{path}: invalid CSV ({exc})") from exc
    if not rows:
        return []
    header = rows[0]
    text_at = _pick(header, TEXT_COLUMNS, path, "text")
    label_at = _pick(header, LABEL_COLUMNS, path, "label")
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) <= max(text_at, label_at):
            raise ExamplesFileError(f"{where}: {len(row)} columns, the header has {len(header)}")
        examples.append(_checked(row[text_at], row[label_at], where))
    return examples


def _yaml(path: Path, content: str) -> list[Example]:
    import yaml

    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ExamplesFileError(f"{path}: invalid YAML ({exc})") from exc
    intents = document.get("intents") if isinstance(document, dict) else None
    if not isinstance(intents, dict):
        raise ExamplesFileError(f"{path}: expected a mapping 'intents: {{name: [utterances]}}'")
    examples: list[Example] = []
    for intent, texts in intents.items():
        if not isinstance(texts, list):
            raise ExamplesFileError(f"{path}: intent {intent!r} must list its utterances")
        examples.extend(_checked(text, intent, f"{path}: intent {intent!r}") for text in texts)
    return examples


_READERS = {
    ".jsonl": _jsonl,
    ".json": _jsonl,
    ".ndjson": _jsonl,
    ".csv": _csv,
    ".tsv": _csv,
    ".yaml": _yaml,
    ".yml": _yaml,
}


def load_examples(paths: Path | str | Iterable[Path | str]) -> list[Example]:
    """All examples of the given files, in order; an error names the file and line to fix."""
    if isinstance(paths, str | Path):
        paths = [paths]
    examples: list[Example] = []
    for raw in paths:
        path = Path(raw)
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            raise ExamplesFileError(
                f"{path}: unknown format {path.suffix or '(no extension)'}; "
                f"use one of {', '.join(sorted(_READERS))}"
            )
        found = reader(path, _read_text(path))
        if not found:
            raise ExamplesFileError(f"{path}: no examples in the file")
        examples.extend(found)
    return examples
