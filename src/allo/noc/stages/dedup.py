"""Deduplicate: the same alarm sent twice, or raised again while it is still active.

Two kinds, both folded under the first alarm of the run: a repeated id (bad input,
counted in the report: a sender retried) and the same type on the same device raised while
the previous one is still active or within ``duplicate_seconds`` of it.
"""

from __future__ import annotations

from collections import OrderedDict

from allo.domain.alarms import FoldReason
from allo.noc.pipeline import Flow, PipelineConfig
from allo.noc.sources.base import InputReport

_MAX_IDS = 1_000_000  # ids remembered for duplicate detection (oldest forgotten first)


class Deduplicate:
    name = "deduplicate"

    def __init__(self, config: PipelineConfig, report: InputReport) -> None:
        self.config = config
        self.report = report
        self._ids: OrderedDict[str, Flow] = OrderedDict()
        self._last: dict[tuple[str, str], Flow] = {}

    def process(self, batch: list[Flow]) -> list[Flow]:
        window = self.config.duplicate_seconds
        for flow in batch:
            alarm = flow.alarm
            first = self._ids.get(alarm.id)
            if first is not None:
                self.report.add(
                    "duplicate_id",
                    alarm.row,
                    f"id {alarm.id!r} already seen at row {first.alarm.row}",
                )
                flow.issues.append("duplicate id")
                flow.fold(FoldReason.DUPLICATE, first, f"same id as row {first.alarm.row}")
                continue
            self._ids[alarm.id] = flow
            if len(self._ids) > _MAX_IDS:
                self._ids.popitem(last=False)
            previous = self._last.get(flow.key)
            self._last[flow.key] = flow
            if previous is None:
                continue
            before = previous.alarm
            active = before.cleared_at is None or before.cleared_at >= alarm.raised_at
            gap = alarm.raised_at - before.raised_at
            if 0 <= gap <= window or (gap >= 0 and active):
                head = previous.under if previous.reason is FoldReason.DUPLICATE else previous
                assert head is not None
                flow.fold(
                    FoldReason.DUPLICATE, head, f"repeat of row {head.alarm.row} after {gap:.0f} s"
                )
        return batch
