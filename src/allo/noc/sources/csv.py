"""Alarms from a CSV file with a header row.

The PCIC 2021 format ``alarm_id,device_id,start_timestamp,end_timestamp`` is recognised by
its header: there ``alarm_id`` is the alarm *type* (the rows carry no identifier), so the
id becomes ``row-N``. Any other header goes through the shared field names of
:mod:`allo.noc.sources.fields` (``id, device, alarm_type, raised_at, cleared_at, severity``
and their usual synonyms); unknown columns are kept as attributes.

One line is one row: a cell may be quoted (``"Paris, 15e"``) but may not span lines. A
stray quote would otherwise swallow every line after it into one cell, and those alarms
would vanish; here it spoils its own line only, which becomes a malformed stand-in.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from math import isfinite
from pathlib import Path

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.sources.base import (
    MAX_NAME_CHARS,
    InputReport,
    malformed,
    storable,
)
from allo.noc.sources.fields import alarm_from_fields, timestamp
from allo.noc.sources.text_files import open_text, undecodable

PCIC_HEADER = ["alarm_id", "device_id", "start_timestamp", "end_timestamp"]


class CsvSource:
    """Reads ``path`` lazily; every data row yields exactly one alarm (or a malformed stand-in).

    ``skip_device``, a hint for a replay split by region: a well-formed PCIC row whose
    device it accepts may be left out unread (its row number still counts). Every other
    row is read as usual, so the report is the whole file's."""

    def __init__(self, path: Path, skip_device: Callable[[str], bool] | None = None) -> None:
        self.path = path
        self.report = InputReport()
        self.skip_device = skip_device

    def __iter__(self) -> Iterator[Alarm]:
        with open_text(self.path, "alarm file") as handle:
            header: list[str] = []
            for line in handle:
                if line.strip():
                    header = [cell.strip() for cell in _cells(line)]
                    break
            if not header:
                return
            pcic = [h.lower() for h in header[:4]] == PCIC_HEADER
            row = 0
            skip = self.skip_device
            for line in handle:
                problem = None if line.isascii() else undecodable(line)
                if problem is None:
                    try:
                        cells = _cells(line)
                    except csv.Error as exc:  # a quoted cell over the csv module's size limit
                        problem = f"unreadable CSV ({exc})"
                if problem is not None:
                    yield malformed(row, line.rstrip("\r\n"), problem, self.report)
                    row += 1
                    continue
                if len(cells) == 1 and not cells[0].strip():  # a blank line is no data row
                    continue
                if (
                    skip is not None
                    and pcic
                    and len(cells) >= 4
                    and skip(cells[1].strip())
                    and self._pcic_well_formed(cells)  # nothing to report: left out unbuilt
                ):
                    row += 1
                    continue
                if pcic and len(cells) >= 4:  # the common row, read without a detour
                    alarm = self._pcic_fast(cells, row)
                    if alarm is not None:
                        yield alarm
                        row += 1
                        continue
                if not "".join(cells).strip():  # ",,,": an empty row, not an alarm
                    self.report.add("empty_row", row, "a row of separators only, skipped")
                    continue
                yield self._pcic(cells, row) if pcic else self._named(header, cells, row)
                row += 1

    @staticmethod
    def _pcic_well_formed(cells: list[str]) -> bool:
        """Whether :meth:`_pcic_fast` would read the row (without building its alarm)."""
        if not cells[0].strip() or not cells[1].strip():
            return False
        end = cells[3].strip()
        try:
            return isfinite(float(cells[2])) and (not end or isfinite(float(end)))
        except ValueError:
            return False

    @staticmethod
    def _pcic_fast(cells: list[str], row: int) -> Alarm | None:
        """A well-formed PCIC row's alarm with plain numbers for times, else ``None`` (then
        :meth:`_pcic` reads it, with every check and error message): this runs for every
        row of a large file, where the general path's calls are most of the cost."""
        alarm_type = cells[0].strip()
        device = cells[1].strip()
        if not alarm_type or not device:
            return None
        end = cells[3].strip()
        try:
            raised = float(cells[2])
            cleared = float(end) if end else None
        except ValueError:
            return None
        if not isfinite(raised) or (cleared is not None and not isfinite(cleared)):
            return None
        if len(alarm_type) > MAX_NAME_CHARS or len(device) > MAX_NAME_CHARS:
            return None  # :meth:`_pcic` makes it a stand-in
        return Alarm(f"row-{row}", device, alarm_type, raised, cleared, row=row)

    def _pcic(self, cells: list[str], row: int) -> Alarm:
        raw = ",".join(cells)
        if len(cells) < 4:
            return malformed(row, raw, f"expected 4 columns, found {len(cells)}", self.report)
        alarm_type, device, start, end = (c.strip() for c in cells[:4])
        if not alarm_type or not device:
            return malformed(row, raw, "empty alarm type or device", self.report)
        try:
            raised = timestamp(start, "start_timestamp")
            cleared = timestamp(end, "end_timestamp") if end else None
        except InvalidInputError as exc:
            return malformed(row, raw, str(exc), self.report)
        alarm = Alarm(
            id=f"row-{row}",
            device=device,
            alarm_type=alarm_type,
            raised_at=raised,
            cleared_at=cleared,
            row=row,
        )
        return storable(alarm, self.report)

    def _named(self, header: list[str], cells: list[str], row: int) -> Alarm:
        raw = ",".join(cells)
        if len(cells) != len(header):
            return malformed(
                row, raw, f"expected {len(header)} columns, found {len(cells)}", self.report
            )
        try:
            alarm = alarm_from_fields(dict(zip(header, cells, strict=True)), row, f"row-{row}")
        except InvalidInputError as exc:
            return malformed(row, raw, str(exc), self.report)
        return storable(alarm, self.report)


def _cells(line: str) -> list[str]:
    """The cells of one line: a plain split when it holds no quote (the common case, and
    the quickest), else the csv module on that line alone (see the module docstring)."""
    line = line.rstrip("\r\n")
    if '"' not in line:
        return line.split(",")
    return next(csv.reader((line,)), [])
