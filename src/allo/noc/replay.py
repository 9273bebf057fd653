"""Batch replay: a file of alarms through the *same* pipeline as a live stream.

Alarms are pushed in batches cut at timestamp boundaries (alarms raised at the same second
always travel together, so that their order in the file does not matter), as fast as
possible or paced at ``speed`` times real time on the injected clock. The figures are those
of the issue: ``alarms``, ``incidents``, ``reduction = 1 - incidents / alarms`` and
``alarms_per_second`` measured from the first row read to the last incident out.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from allo.clock import Clock
from allo.domain.alarms import Alarm, Incident
from allo.errors import InvalidInputError
from allo.noc.pipeline import PipelineConfig
from allo.noc.sources.base import InputReport

if TYPE_CHECKING:
    from allo.noc.broker.partition import Partitioning
    from allo.noc.causal import CausalGraph
    from allo.noc.topology import Topology

#: processes a split replay may use (each is a whole interpreter: more than the cores
#: only adds memory and lock waits)
MAX_REPLAY_PARTITIONS = 64


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
    far_future = PipelineConfig().future_seconds
    frozen_before = gc.get_freeze_count()
    gc.freeze()  # the warm engine: see below
    try:
        for batch in batches(alarms, size):
            count += len(batch)
            if speed:
                moment = batch[0].raised_at
                # an alarm raised far in the future paces nothing: one stamped 1e12 would
                # otherwise put the replay to sleep for decades
                if moment <= clock.now() + far_future:  # NaN: not paced either
                    if origin is None:
                        origin = (moment, clock.now())
                    due = origin[1] + (moment - origin[0]) / speed
                    if math.isfinite(due):  # -1e308 then 1e308 would overflow the sleep
                        clock.sleep(due - clock.now())
            emit(pipeline.push(batch))
            # What a batch leaves behind (stored ids, open incidents, the incidents
            # returned) lives on, and Python's full collections walked all of it again and
            # again: 15-19 % of a replay's CPU, for garbage they never found (a step makes
            # no reference cycles; allo.noc.broker.tuning.quiet_gc measured the same).
            # Frozen objects are still freed by reference counting.
            gc.freeze()
        emit(pipeline.flush())
    finally:
        if frozen_before == 0:  # nobody else froze anything: leave the collector as found
            gc.unfreeze()
    seconds = time.perf_counter() - started
    return ReplayResult(count, incidents, seconds, pipeline.report, Counter(pipeline.fold_counts()))


# -- one process per topology region -----------------------------------------------------


@dataclass(frozen=True)
class PartitionPlan:
    """How a batch replay is split: ``partitions`` processes, each fed the alarms of its own
    region, or one process when a split could change the incidents (``reason`` says why).

    Every stage of the pipeline only relates alarms of devices at most ``incident_hops``
    apart (the same device without a topology), so regions that cut no topology link
    give, for a file in time order, the incidents one process gives
    (``tests/noc/test_partitioned.py``; the 24V set too). What a region cannot see is the
    *other* regions' newest time: in a file out of order by more than ``late_seconds``,
    the out-of-order marks (and an unreadable time's placement, a far-future alarm's
    reset of the correlation memory) follow each region's own newest alarm."""

    partitions: int
    partitioning: Partitioning | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"partitions": self.partitions, "reason": self.reason}


def plan_partitions(topology: Topology | None, wanted: int) -> PartitionPlan:
    """Regions for ``wanted`` processes (:func:`~allo.noc.broker.partition.partition_topology`),
    or one process when the regions would cut a link of the topology."""
    from allo.noc.broker.partition import partition_topology

    if not 1 <= wanted <= MAX_REPLAY_PARTITIONS:
        raise InvalidInputError(
            f"partitions must be between 1 and {MAX_REPLAY_PARTITIONS}, got {wanted}"
        )
    if wanted == 1:
        return PartitionPlan(1, None, "one process asked for")
    partitioning = partition_topology(topology, wanted)
    if topology is None:
        return PartitionPlan(wanted, partitioning, "no topology: each device on its own")
    quality = partitioning.quality(topology)
    if quality.cut_edges:
        return PartitionPlan(
            1,
            None,
            f"{wanted} regions would cut {quality.cut_edges} of {quality.edges} topology "
            "links (alarms on either side could no longer meet): one process instead",
        )
    if min(quality.loads) == 0:
        return PartitionPlan(
            1, None, f"the topology has fewer than {wanted} separable regions: one process"
        )
    return PartitionPlan(wanted, partitioning, f"{wanted} regions, no topology link cut")


def check_stored_layout(stored: Mapping[str, set[str]], stream: str, plan: PartitionPlan) -> None:
    """Refuse a replay that would store alarms already stored under another stream.

    A replay is idempotent per stream: ``(stream, alarm id)`` is stored once. Run again
    with another ``--partitions`` (or another topology, which moves devices between
    regions), a file's alarms would go to other streams and be stored, and counted, a
    second time. ``stored`` maps each stream of the family (``stream`` and its
    ``<stream>.<p>``, from :meth:`SqlNocStore.devices_by_stream`) to its devices; every
    device must be where this ``plan`` would send it."""
    for name, devices in sorted(stored.items()):
        for device in sorted(devices):
            if plan.partitioning is None:
                wanted = stream
            else:
                wanted = partition_stream(stream, plan.partitioning.partition_of(device))
            if name != wanted:
                layout = ", ".join(sorted(stored))
                raise InvalidInputError(
                    f"stream {stream!r} already holds alarms stored by another split "
                    f"(streams {layout}; device {device!r} is in {name!r}, this run would "
                    f"use {wanted!r}): run again with the --partitions (and topology) of the "
                    "first run, or choose another --stream"
                )


@dataclass(frozen=True)
class PartitionJob:
    """What one replay process needs (picklable: sent to a fresh interpreter)."""

    path: Path
    database_url: str
    stream: str
    index: int
    partitioning: Partitioning
    topology: Topology | None
    graph: CausalGraph | None
    config: PipelineConfig | None
    batch_size: int
    parent: int  # the process that started this one: if it dies, this one stops


class ParentGoneError(RuntimeError):
    """The process that started a replay partition died (``kill -9``): this one stops too."""


def _while_parent_lives(alarms: Iterable[Alarm], parent: int) -> Iterator[Alarm]:
    """``alarms``, stopping (between batches, so no transaction is half done) once
    ``parent`` is gone: after a ``kill -9`` of ``allo noc ingest`` no orphan keeps
    writing while the user runs it again (two engines on one stream)."""
    for count, alarm in enumerate(alarms):
        if count % 500 == 0 and os.getppid() != parent:
            raise ParentGoneError(f"process {parent} that started this replay partition is gone")
        yield alarm


@dataclass
class PartitionedResult:
    """What a replay split across processes did, summed over its partitions."""

    alarms: int
    incidents: int
    seconds: float
    report: InputReport
    folded: Counter[str]
    accepted: int
    already_stored: int
    recovered: int
    streams: list[str]
    plan: PartitionPlan
    per_partition: list[int]

    @property
    def reduction(self) -> float:
        return 1.0 - self.incidents / self.alarms if self.alarms else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "alarms": self.alarms,
            "incidents": self.incidents,
            "reduction": round(self.reduction, 4),
            "alarms_per_second": round(self.alarms / self.seconds, 1) if self.seconds else 0.0,
            "seconds": round(self.seconds, 3),
            "folded": dict(sorted(self.folded.items())),
            "input_problems": self.report.to_json(),
            "partitions": self.plan.to_json() | {"alarms": self.per_partition},
        }


def partition_stream(stream: str, index: int) -> str:
    """The stream of partition ``index`` of a split replay into ``stream``."""
    return f"{stream}.{index}"


@dataclass
class _PartitionOutcome:
    alarms: int
    incidents: int
    folded: Counter[str]
    source_report: InputReport
    stage_report: InputReport
    accepted: int
    already_stored: int
    recovered: int


def _replay_partition(job: PartitionJob) -> _PartitionOutcome:
    """One process of :func:`replay_partitioned`: the file's alarms of its region, through
    its own engine and stream (one transaction per batch, as ``allo noc ingest``)."""
    from allo.clock import SystemClock
    from allo.noc.engine import NocEngine
    from allo.noc.sources import CsvSource, open_source
    from allo.noc.store import SqlNocStore

    partition_of = job.partitioning.partition_of
    mine = job.index
    source = open_source(job.path)
    if isinstance(source, CsvSource):  # rows of other regions need not be built at all
        source.skip_device = lambda device: partition_of(device) != mine
    clock = SystemClock()
    engine = NocEngine(
        SqlNocStore(job.database_url),
        clock,
        stream=partition_stream(job.stream, mine),
        source="file",
        topology=job.topology,
        graph=job.graph,
        config=job.config,
        history=0,
    )
    try:
        engine.warm_up()
        alarms = (a for a in source if partition_of(a.device) == mine)
        try:
            result = replay(
                _while_parent_lives(alarms, job.parent), engine, clock, batch_size=job.batch_size
            )
        except ParentGoneError:
            engine.close()
            os._exit(3)  # nobody waits for a result; a pool worker would wait for more work
        return _PartitionOutcome(
            result.alarms,
            len(result.incidents),
            result.folded,
            # every process reads the whole file: its problems are counted once, by process 0
            source.report if mine == 0 else InputReport(),
            engine.report,
            engine.totals["accepted"],
            engine.totals["already_stored"],
            engine.recovered,
        )
    finally:
        engine.close()


def replay_partitioned(
    path: Path,
    database_url: str,
    stream: str,
    plan: PartitionPlan,
    *,
    topology: Topology | None = None,
    graph: CausalGraph | None = None,
    config: PipelineConfig | None = None,
    batch_size: int = 2000,
) -> PartitionedResult:
    """Replay the file ``path`` into ``database_url``, one process per region of ``plan``.

    Process ``p`` reads the whole file, keeps the alarms of its region and runs them
    through its own engine into stream ``<stream>.<p>`` (as a broker consumer does), so
    that the pipelines use every core; the database is migrated once, before they start.
    Like ``allo noc ingest``, run it again (with the same plan) after a crash: each stream
    skips what it stored and rebuilds its open incidents; another plan is refused
    (:func:`check_stored_layout`). ``seconds`` counts from the start of the processes to
    the last commit."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from allo.noc.store import SqlNocStore

    if plan.partitioning is None:
        raise InvalidInputError(f"this plan runs in one process ({plan.reason}): use replay()")
    for index in range(plan.partitions):
        _check_stream(partition_stream(stream, index))
    started = time.perf_counter()
    store = SqlNocStore(database_url)
    try:
        store.migrate()
        check_stored_layout(store.devices_by_stream(stream), stream, plan)
    finally:
        store.close()
    jobs = [
        PartitionJob(
            path,
            database_url,
            stream,
            index,
            plan.partitioning,
            topology,
            graph,
            config,
            batch_size,
            os.getpid(),
        )
        for index in range(plan.partitions)
    ]
    # a fresh interpreter per process ("spawn"): nothing of this one's threads or open
    # connections is inherited, on every platform
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=plan.partitions, mp_context=context) as pool:
        outcomes = list(pool.map(_replay_partition, jobs))
    seconds = time.perf_counter() - started
    report = InputReport()
    folded: Counter[str] = Counter()
    for outcome in outcomes:
        for part in (outcome.source_report, outcome.stage_report):
            report.counts.update(part.counts)
            for kind, examples in part.examples.items():
                kept = report.examples.setdefault(kind, [])
                kept.extend(examples[: max(0, report.keep - len(kept))])
        folded.update(outcome.folded)
    return PartitionedResult(
        alarms=sum(o.alarms for o in outcomes),
        incidents=sum(o.incidents for o in outcomes),
        seconds=seconds,
        report=report,
        folded=folded,
        accepted=sum(o.accepted for o in outcomes),
        already_stored=sum(o.already_stored for o in outcomes),
        recovered=sum(o.recovered for o in outcomes),
        streams=[partition_stream(stream, i) for i in range(plan.partitions)],
        plan=plan,
        per_partition=[o.alarms for o in outcomes],
    )


def _check_stream(name: str) -> None:
    from allo.noc.engine import check_stream

    try:
        check_stream(name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{exc} (a split replay adds .<partition> to the stream)") from exc
