"""Alarm sources: files (CSV, JSON lines) and request payloads (generic JSON, Alertmanager)."""

from __future__ import annotations

from pathlib import Path

from allo.errors import UnsupportedFormatError
from allo.noc.sources.alertmanager import parse_alertmanager
from allo.noc.sources.base import AlarmSource, InputReport
from allo.noc.sources.csv import CsvSource
from allo.noc.sources.jsonl import JsonLinesSource
from allo.noc.sources.payload import parse_alarm_payload


def open_source(path: Path) -> AlarmSource:
    """The source for a file, chosen by its extension."""
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return CsvSource(path)
    if suffix in {".jsonl", ".ndjson"}:
        return JsonLinesSource(path)
    raise UnsupportedFormatError(f"alarm file {path}: use .csv or .jsonl (one object per line)")


__all__ = [
    "AlarmSource",
    "CsvSource",
    "InputReport",
    "JsonLinesSource",
    "open_source",
    "parse_alarm_payload",
    "parse_alertmanager",
]
