"""Deduplicate: the same alarm sent twice, or raised again while it is still active.

Two kinds, both folded under the first alarm of the run: a repeated id (bad input,
counted in the report: a sender retried) and the same type on the same device raised while
the previous one is still active or within ``duplicate_seconds`` of it.
"""

from __future__ import annotations

from allo.domain.alarms import FoldReason
from allo.noc.pipeline import Flow, PipelineConfig
from allo.noc.sources.base import InputReport

#: ids remembered for duplicate detection: exactly the last 131,072
ID_MEMORY = 131_072


class RecentIds:
    """The flow that first carried each of the last ``size`` ids.

    A retried send repeats an id within seconds; a persisting engine also checks every
    id it ever stored before the pipeline sees it (a file replay without an engine
    relies on this memory alone). One ``OrderedDict`` of the last million ids stopped a
    streaming engine whenever it grew: 31 ms at 174,762 ids, 67 ms at 349,525, each
    doubling twice as long. Dropping a whole generation of ids at once would stop it too
    (it frees every flow they hold). So ids go into a plain dict of at most ``size``;
    when it is full it becomes the old one, and each later id forgets the oldest id of
    the old one (one deletion, no resize, its slot in the order list blanked), which is
    empty by the time the new one is full again. The new dict still grows from empty
    each time (about 5 ms at 87,381 ids with the default size), and a swap copies the
    ids' order (about 2 ms). A lookup costs two probes at most."""

    def __init__(self, size: int = ID_MEMORY) -> None:
        if size < 1:
            raise ValueError(f"remember at least one id (size {size})")
        self.size = size
        self._new: dict[str, Flow] = {}
        self._old: dict[str, Flow] = {}
        self._old_order: list[str] = []  # the old dict's ids, oldest first
        self._forgotten = 0  # how many of them are already deleted

    def get(self, alarm_id: str) -> Flow | None:
        first = self._new.get(alarm_id)
        return first if first is not None else self._old.get(alarm_id)

    def add(self, alarm_id: str, flow: Flow) -> None:
        """Remember ``flow`` as the first carrier of ``alarm_id`` (an id already
        remembered keeps its first flow)."""
        if alarm_id in self._new or alarm_id in self._old:
            return
        order = self._old_order
        forgotten = self._forgotten
        if forgotten < len(order):
            del self._old[order[forgotten]]
            order[forgotten] = ""  # freed one by one, not all at the next swap
            self._forgotten = forgotten + 1
        new = self._new
        new[alarm_id] = flow
        if len(new) >= self.size:
            self._old, self._new = new, {}
            self._old_order = list(new)
            self._forgotten = 0

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class Deduplicate:
    name = "deduplicate"

    def __init__(
        self, config: PipelineConfig, report: InputReport, *, id_memory: int = ID_MEMORY
    ) -> None:
        self.config = config
        self.report = report
        self._ids = RecentIds(id_memory)
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
            ids.add(alarm_id, flow)
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
