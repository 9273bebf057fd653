"""Alarms from JSON lines: one object per line, fields as in :mod:`.fields`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.sources.base import InputReport, malformed, storable
from allo.noc.sources.fields import alarm_from_fields
from allo.noc.sources.text_files import open_text, undecodable


class JsonLinesSource:
    """Reads ``path`` lazily; blank lines are skipped, every other line is one row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.report = InputReport()

    def __iter__(self) -> Iterator[Alarm]:
        with open_text(self.path, "alarm file") as handle:
            row = 0
            for line in handle:
                if not line.strip():
                    continue
                yield self._parse(line, row)
                row += 1

    def _parse(self, line: str, row: int) -> Alarm:
        problem = undecodable(line)
        if problem is not None:
            return malformed(row, line, problem, self.report)
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            return malformed(row, line, f"not JSON ({exc.msg})", self.report)
        except RecursionError:
            return malformed(row, line, "JSON nested too deeply", self.report)
        except ValueError as exc:  # a number of over 4,300 digits
            return malformed(row, line, f"unusable JSON ({exc})", self.report)
        if not isinstance(data, dict):
            return malformed(row, line, "expected a JSON object", self.report)
        try:
            alarm = alarm_from_fields(data, row, f"row-{row}")
        except InvalidInputError as exc:
            return malformed(row, line, str(exc), self.report)
        return storable(alarm, self.report)
