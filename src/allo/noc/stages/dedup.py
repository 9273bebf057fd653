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
        ids = self._ids
        last = self._last
        for flow in batch:
            alarm_id = flow.alarm.id
            first = ids.get(alarm_id)
            if first is not None:
                row = flow.alarm.row
                self.report.add(
                    "duplicate_id", row, f"id {alarm_id!r} already seen at row {first.alarm.row}"
                )
                flow.issues.append("duplicate id")
                flow.fold(FoldReason.DUPLICATE, first, f"same id as row {first.alarm.row}")
                continue
            ids[alarm_id] = flow
            if len(ids) > _MAX_IDS:
                ids.popitem(last=False)
            key = (flow.device, flow.alarm_type)
            previous = last.get(key)
            last[key] = flow
            if previous is None:
                continue
            moment = flow.raised_at
            gap = moment - previous.raised_at
            if not gap >= 0:  # raised before the previous one (NaN too): no repeat
                continue
            cleared = previous.cleared_at
            if gap <= window or cleared is None or cleared >= moment:
                head = previous.under if previous.reason is FoldReason.DUPLICATE else previous
                assert head is not None
                flow.fold(
                    FoldReason.DUPLICATE, head, f"repeat of row {head.alarm.row} after {gap:.0f} s"
                )
        return batch
