"""Batch replay: a file of alarms through the *same* pipeline as a live stream.

Alarms are pushed in batches cut at timestamp boundaries (alarms raised at the same second
always travel together, so that their order in the file does not matter), as fast as
possible or paced at ``speed`` times real time on the injected clock. The figures are those
of the issue: ``alarms``, ``incidents``, ``reduction = 1 - incidents / alarms`` and
``alarms_per_second`` measured from the first row read to the last incident out.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from allo.domain.alarms import Alarm, Incident
from allo.noc.clock import Clock
from allo.noc.sources.base import InputReport


class Pushes(Protocol):
    """What a replay drives: a :class:`~allo.noc.pipeline.Pipeline`, or a persisting
    :class:`~allo.noc.engine.NocEngine` around one."""

    @property
    def report(self) -> InputReport: ...

    def push(self, alarms: Sequence[Alarm]) -> list[Incident]: ...

    def flush(self) -> list[Incident]: ...

    def fold_counts(self) -> Counter[str]: ...


@dataclass
class ReplayResult:
    """What a replay produced; ``incidents`` in closing order."""

    alarms: int
    incidents: list[Incident]
    seconds: float
    report: InputReport
    folded: Counter[str] = field(default_factory=Counter)

    @property
    def reduction(self) -> float:
        return 1.0 - len(self.incidents) / self.alarms if self.alarms else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "alarms": self.alarms,
            "incidents": len(self.incidents),
            "reduction": round(self.reduction, 4),
            "alarms_per_second": round(self.alarms / self.seconds, 1) if self.seconds else 0.0,
            "seconds": round(self.seconds, 3),
            "folded": dict(sorted(self.folded.items())),
            "input_problems": self.report.to_json(),
        }


def batches(alarms: Iterable[Alarm], size: int) -> Iterator[list[Alarm]]:
    """Batches of about ``size`` alarms, never splitting alarms raised at the same second."""
    batch: list[Alarm] = []
    for alarm in alarms:
        if len(batch) >= size and not _same_second(batch[-1], alarm):
            yield batch
            batch = []
        batch.append(alarm)
    if batch:
        yield batch


def _same_second(a: Alarm, b: Alarm) -> bool:
    return a.raised_at == b.raised_at or (math.isnan(a.raised_at) or math.isnan(b.raised_at))


def replay(
    alarms: Iterable[Alarm],
    pipeline: Pushes,
    clock: Clock,
    *,
    speed: float | None = None,
    batch_size: int = 2000,
    on_incident: Callable[[Incident], None] | None = None,
) -> ReplayResult:
    """Run every alarm through ``pipeline``; ``speed`` paces event time on ``clock``."""
    started = time.perf_counter()
    incidents: list[Incident] = []
    count = 0
    origin: tuple[float, float] | None = None  # (first event time, clock time then)

    def emit(closed: list[Incident]) -> None:
        incidents.extend(closed)
        if on_incident is not None:
            for incident in closed:
                on_incident(incident)

    size = 1 if speed else batch_size
    for batch in batches(alarms, size):
        count += len(batch)
        if speed:
            moment = batch[0].raised_at
            if math.isfinite(moment):
                if origin is None:
                    origin = (moment, clock.now())
                due = origin[1] + (moment - origin[0]) / speed
                clock.sleep(due - clock.now())
        emit(pipeline.push(batch))
    emit(pipeline.flush())
    seconds = time.perf_counter() - started
    return ReplayResult(count, incidents, seconds, pipeline.report, Counter(pipeline.fold_counts()))
