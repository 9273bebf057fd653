"""Alarms from JSON lines: one object per line, fields as in :mod:`.fields`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.sources.base import InputReport, malformed
from allo.noc.sources.fields import alarm_from_fields


class JsonLinesSource:
    """Reads ``path`` lazily; blank lines are skipped, every other line is one row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.report = InputReport()

    def __iter__(self) -> Iterator[Alarm]:
        if not self.path.is_file():
            raise InvalidInputError(f"alarm file {self.path} not found: check the path")
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            row = 0
            for line in handle:
                if not line.strip():
                    continue
                yield self._parse(line, row)
                row += 1

    def _parse(self, line: str, row: int) -> Alarm:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            return malformed(row, line, f"not JSON ({exc.msg})", self.report)
        if not isinstance(data, dict):
            return malformed(row, line, "expected a JSON object", self.report)
        try:
            return alarm_from_fields(data, row, f"row-{row}")
        except InvalidInputError as exc:
            return malformed(row, line, str(exc), self.report)
