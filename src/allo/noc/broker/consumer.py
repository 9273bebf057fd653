"""One engine process per partition, fed by a Redis consumer group.

The loop of :class:`PartitionConsumer` is the whole delivery guarantee:

1. ``XREADGROUP GROUP allo-noc <consumer> COUNT n BLOCK ms STREAMS <prefix>:<p> >``;
2. decode the entries; those that are not alarms go to the dead-letter stream;
3. ``engine.ingest(alarms)``: one transaction of the engine's store (its commit);
4. only then ``XACK`` the entries (and add the dead letters, in the same ``MULTI``); the
   round trip of a plain ``XACK`` also reads the next new entries (1. without a round
   trip of its own).

Before anything, the consumer takes its partition's lease (:mod:`.lease`) and renews it
before every batch: one engine per partition, even when someone starts a second one.

A ``kill -9`` before 3 commits leaves the entries pending (those read ahead too): they
are read again. A kill between 3 and 4 also leaves them pending; they are read again and
the engine, which keys alarms by id, counts them as already stored: nothing lost, nothing
counted twice. So on
start, before reading new entries, the consumer takes over every pending entry of the
group (``XAUTOCLAIM``, in case a consumer of another name owned some) and reads its own
pending list from the start (``XREADGROUP ... 0``).

Its tail latency (see :mod:`.tuning`): with ``checkpoint="background"`` the store's
connections never checkpoint the SQLite WAL inside a commit (a thread of the consumer
does it, and the consumer restarts the WAL between two batches when it grows); with
``gc_mode="quiet"`` the engine's warm state, and after every batch what survived it, is
frozen out of the garbage collector's passes. ``allo noc consume`` uses both; the
library defaults leave the process as it found it (``inline``, ``default``), since a host
process may not want them.

The latency of an alarm is measured from its ``XADD`` (the millisecond in its entry id,
set by Redis) to the end of the engine commit that contains it; it assumes the broker's
and the consumer's clocks agree (the same host, or NTP).
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from allo.domain.alarms import Alarm
from allo.errors import BrokerError, InvalidInputError
from allo.noc.broker.codec import MalformedEntry, decode_alarm, entry_fields
from allo.noc.broker.latency import LatencyHistogram
from allo.noc.broker.lease import DEFAULT_TTL_SECONDS, PartitionLease
from allo.noc.broker.pipelined import Entry, HeldConnection, ack_and_read, read_group
from allo.noc.broker.streams import (
    GROUP,
    Layout,
    StreamKeys,
    ensure_group,
    partition_mismatch,
    text,
)
from allo.noc.broker.timeline import Timeline
from allo.noc.broker.tuning import (
    REFREEZE_BATCHES,
    BackgroundCheckpointer,
    GcPauses,
    StepTimings,
    quiet_gc,
    sqlite_file,
)
from allo.noc.engine import NocEngine

log = logging.getLogger(__name__)

DEAD_MAXLEN = 100_000
CHECKPOINT_MODES = ("background", "inline")  # inline: SQLite's own auto-checkpoint
GC_MODES = ("quiet", "default")  # quiet: gc.freeze() after warm-up and every batch


def engine_stream(partition: int, prefix: str = "region") -> str:
    """The engine's stream name for a partition (incident ids start with it)."""
    return f"{prefix}.{partition}"


def entry_millis(entry_id: str) -> int | None:
    """The millisecond part of an entry id (``<ms>-<seq>``): when Redis added it."""
    head = entry_id.split("-", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass
class ConsumerReport:
    """What a consumer did since it started (printed as JSON on shutdown)."""

    partition: int
    stream: str
    entries: int = 0
    accepted: int = 0
    already_stored: int = 0
    dead_letters: int = 0
    recovered_entries: int = 0  # pending at start, read again
    engine_recovered: int = 0  # alarms of open incidents rebuilt by the engine's warm-up
    batches: int = 0
    broker_outages: int = 0  # times Redis went away and came back (or not)
    first_commit: float | None = None
    cpu_started: float = field(default_factory=time.process_time)  # reset after warm-up
    last_commit: float | None = None
    dead_reasons: Counter[str] = field(default_factory=Counter)
    dead_examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    timings: StepTimings = field(default_factory=StepTimings)
    gc: GcPauses | None = None
    checkpoints: dict[str, object] | None = None
    slow: list[dict[str, object]] = field(default_factory=list)  # a sample of slow batches
    timeline: Timeline = field(default_factory=Timeline)

    def dead(self, entry_id: str, reason: str) -> None:
        self.dead_letters += 1
        self.dead_reasons[reason.split(":", 1)[0][:60]] += 1
        if len(self.dead_examples) < 5:
            self.dead_examples.append(f"{entry_id}: {reason[:200]}")

    def to_json(self, *, buckets: bool = False) -> dict[str, object]:
        latency = self.latency.to_json()
        if not buckets:
            latency.pop("buckets")
        return {
            "partition": self.partition,
            "stream": self.stream,
            "entries": self.entries,
            "accepted": self.accepted,
            "already_stored": self.already_stored,
            "dead_letters": self.dead_letters,
            "dead_reasons": dict(self.dead_reasons),
            "dead_examples": self.dead_examples,
            "recovered_entries": self.recovered_entries,
            "engine_recovered": self.engine_recovered,
            "batches": self.batches,
            "broker_outages": self.broker_outages,
            "first_commit": self.first_commit,
            # CPU seconds of the whole process (engine, decoding, Redis client, threads)
            # since the report began: robust to a busy machine, unlike latencies
            "cpu_seconds": round(time.process_time() - self.cpu_started, 3),
            "last_commit": self.last_commit,
            "latency": latency,
            "timings": self.timings.to_json(),
            "gc": None if self.gc is None else self.gc.to_json(),
            "checkpoints": self.checkpoints,
            "slow_batches": self.slow,
            # every second with --latency-histogram (benchmarks), else the slow ones
            "timeline": self.timeline.to_json(slow_only=not buckets),
            "warnings": self.warnings,
        }


class PartitionConsumer:
    """Feeds one partition's stream into its own engine (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        engine: NocEngine,
        partition: int,
        partitions: int,
        *,
        keys: StreamKeys | None = None,
        consumer: str | None = None,
        count: int = 500,
        block_ms: int = 500,
        wall: Callable[[], float] = time.time,
        lease_seconds: float = DEFAULT_TTL_SECONDS,
        checkpoint: str = "inline",
        gc_mode: str = "default",
    ) -> None:
        if checkpoint not in CHECKPOINT_MODES:
            raise ValueError(f"checkpoint must be one of {CHECKPOINT_MODES}, not {checkpoint!r}")
        if gc_mode not in GC_MODES:
            raise ValueError(f"gc_mode must be one of {GC_MODES}, not {gc_mode!r}")
        if not 0 <= partition < partitions:
            raise ValueError(f"partition {partition} is not in 0..{partitions - 1}")
        self.client = client
        self.engine = engine
        self.partition = partition
        self.partitions = partitions
        self.keys = keys or StreamKeys()
        self.key = self.keys.partition(partition)
        self.consumer = consumer or f"partition-{partition}"
        self.count = count
        self.block_ms = block_ms
        self._wall = wall
        self.report = ConsumerReport(partition, engine.stream)
        self.lease = PartitionLease(client, self.keys.owner(partition), ttl_seconds=lease_seconds)
        self._link = HeldConnection(client)  # reads and acknowledgements (pipelined.py)
        self.checkpoint_mode = checkpoint
        self.gc_mode = gc_mode
        self._checkpointer: BackgroundCheckpointer | None = None
        self._read_at = 0.0  # wall-clock time of the last read that returned entries
        # new entries read in the round trip that acknowledged the previous batch (see
        # _acknowledge), handled by the next poll; None: nothing read ahead
        self._ahead: list[Entry] | None = None

    # -- start -----------------------------------------------------------------------------

    def start(self, digest: str | None = None, *, lease_wait: float | None = None) -> None:
        """Check the layout, take the partition's lease (waiting up to ``lease_wait``
        seconds, by default a little over one time to live, which is what a consumer
        restarted after ``kill -9`` needs), create the group, warm the engine up (one
        process at a time, so that a fresh database is migrated once) and re-read what
        was left pending."""
        found = Layout.read(self.client, self.keys)
        if found is not None and found.partitions != self.partitions:
            raise InvalidInputError(partition_mismatch(found, self.partitions, self.keys))
        if found is not None and digest is not None and found.digest != digest:
            self.report.warnings.append(
                "the publisher's partition map differs from the one this consumer computes "
                "from its topology (another --topology, or --balance-by on the publisher): "
                "check that both use the same topology file"
            )
        wait = self.lease.ttl_ms / 1000.0 + 2.0 if lease_wait is None else lease_wait
        self.lease.acquire(wait)
        ensure_group(self.client, self.key)
        self._defer_checkpoints()
        self._warm_up()
        if self._checkpointer is not None:  # now the file exists, in WAL mode
            self._checkpointer.start()
        self.report.engine_recovered = self.engine.recovered
        if self.gc_mode == "quiet":
            quiet_gc()
        self.report.gc = GcPauses()
        self.report.cpu_started = time.process_time()  # the work from here, not the warm-up
        self._claim_orphans()
        self.recover()

    def _defer_checkpoints(self) -> None:
        """In ``background`` mode with a SQLite file, move WAL checkpoints off the commit
        path (see :class:`~allo.noc.broker.tuning.BackgroundCheckpointer`)."""
        if self.checkpoint_mode != "background":
            return
        store = self.engine.store
        path = sqlite_file(getattr(store, "url", ""))
        defer = getattr(store, "defer_checkpoints", None)
        if path is None or defer is None or not defer():
            return
        self._checkpointer = BackgroundCheckpointer(path)

    def _warm_up(self) -> None:
        """The engine's warm-up under a Redis lock: consumers starting together on a fresh
        database would otherwise race to create its schema. The lock expires by itself
        (a consumer killed while holding it delays the others by a minute at most)."""
        import redis

        lock = self.client.lock(self.keys.warm_up_lock, timeout=60, blocking_timeout=600)
        if not lock.acquire():
            raise BrokerError(
                f"waited 10 minutes for {self.keys.warm_up_lock!r}, held by another consumer "
                "warming up: check the other consumers' logs, then start this one again",
                retryable=True,
            )
        try:
            self.engine.warm_up()
        finally:
            with suppress(redis.exceptions.LockError):  # expired during a long warm-up: harmless
                lock.release()

    def _claim_orphans(self) -> None:
        """Take over entries pending for other consumer names of the group (one process
        owns a partition, so any pending entry of its stream is this process's work)."""
        import redis

        cursor: Any = "0-0"
        while True:
            try:
                reply = self.client.xautoclaim(
                    self.key, GROUP, self.consumer, min_idle_time=0, start_id=cursor, count=1000
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise BrokerError(
                    f"lost Redis while taking over pending entries of {self.key}: start the "
                    "consumer again once Redis is back",
                    retryable=True,
                ) from exc
            cursor = reply[0]
            if text(cursor) == "0-0":
                return

    def recover(self) -> int:
        """Process this consumer's pending entries, oldest first; returns how many."""
        done = 0
        last = "0"
        while True:
            entries = self._read(last, block=False)
            if not entries:
                return done
            self._handle(entries)
            done += len(entries)
            self.report.recovered_entries += len(entries)
            last = text(entries[-1][0])

    # -- the loop ----------------------------------------------------------------------------

    def poll(self, block: bool = True) -> int:
        """Read and handle one batch of new entries; returns how many were handled.

        The entries come from the previous batch's acknowledgement when it read some
        ahead (one round trip instead of two per batch), else from a read here."""
        entries, self._ahead = self._ahead, None
        if not entries:
            entries = self._read(">", block=block)
        if entries:
            self._handle(entries, read_ahead=True)
        return len(entries)

    def run(
        self,
        should_stop: Callable[[], bool],
        *,
        retry_seconds: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> ConsumerReport:
        """Poll until ``should_stop()`` (checked between batches, so a clean shutdown never
        cuts a batch in half). When Redis goes away, wait for it (with back-off) for up to
        ``retry_seconds``, then read the pending entries again before going on: the batch
        whose acknowledgement was lost is skipped by the engine, not counted twice."""
        failing_since: float | None = None
        delay = 0.2
        while not should_stop():
            try:
                self.lease.keep()
                if failing_since is not None:
                    self.recover()
                self.poll()
            except BrokerError as exc:
                if not exc.retryable:
                    raise
                if failing_since is None:
                    failing_since = now()
                    self.report.broker_outages += 1
                    log.warning("partition %s: %s; waiting for Redis", self.partition, exc)
                elif now() - failing_since > retry_seconds:
                    raise
                sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if failing_since is not None:
                log.warning("partition %s: Redis is back", self.partition)
            failing_since = None
            delay = 0.2
        if self._ahead:  # read with the last acknowledgement: finish it too (a clean stop)
            entries, self._ahead = self._ahead, None
            self._handle(entries)
        return self.report

    def release(self) -> None:
        """Give the partition's lease back (clean stop); harmless if Redis is gone. Also
        stops the background checkpointer and the GC hook."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self.report.checkpoints = self._checkpointer.to_json()
        if self.report.gc is not None:
            self.report.gc.close()
        self._link.release()
        with suppress(BrokerError):
            self.lease.release()

    def _read(self, cursor: str, *, block: bool) -> list[Entry]:
        import redis

        try:
            entries = read_group(
                self._link,
                self.key,
                GROUP,
                self.consumer,
                cursor,
                self.count,
                self.block_ms if block else None,
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerError(
                f"lost Redis while reading {self.key} ({type(exc).__name__}): restart the "
                "consumer once Redis is back; unacknowledged alarms will be read again",
                retryable=True,
            ) from exc
        except redis.ResponseError as exc:
            raise BrokerError(
                f"Redis refused to read {self.key} for group {GROUP!r} ({exc}): was the "
                "stream or its group deleted? Start the consumer again to recreate them",
                retryable=False,
            ) from exc
        if entries:
            self._read_at = self._wall()
        return entries

    def _handle(self, entries: list[Entry], *, read_ahead: bool = False) -> None:
        """Decode, commit to the engine, then acknowledge (see the module docstring);
        ``read_ahead``: also read the next new entries in the acknowledgement's round
        trip (:meth:`poll` takes them)."""
        self.lease.keep()  # never commit a batch for a partition another process owns
        alarms: list[Alarm] = []
        dead: list[dict[str, str]] = []
        ids: list[str] = []
        for raw_id, fields in entries:
            entry_id = text(raw_id)
            ids.append(entry_id)
            try:
                alarms.append(decode_alarm(fields, f"{self.key}:{entry_id}"))
            except MalformedEntry as exc:
                self.report.dead(entry_id, str(exc))
                dead.append(
                    {
                        "stream": self.key,
                        "entry": entry_id,
                        "partition": str(self.partition),
                        "reason": str(exc),
                        "fields": json.dumps(entry_fields(fields), ensure_ascii=False)[:65536],
                        "at": f"{self._wall():.3f}",
                    }
                )
        started = time.perf_counter()
        gc_before = sum(self.report.gc.total_ms) if self.report.gc is not None else 0.0
        if alarms:
            result = self.engine.ingest(alarms, source="broker")
            self.report.accepted += result.accepted
            self.report.already_stored += result.already_stored
        committed = self._wall()
        spent = (time.perf_counter() - started) * 1000.0
        self.report.timings.ingest.add(spent)
        self.report.timings.largest_batch = max(self.report.timings.largest_batch, len(entries))
        if spent > 50.0 and len(self.report.slow) < 200:
            gc_spent = sum(self.report.gc.total_ms) - gc_before if self.report.gc else 0.0
            self.report.slow.append(
                {"ms": round(spent, 1), "gc_ms": round(gc_spent, 1), "entries": len(entries)}
            )
        ack_started = time.perf_counter()
        self._acknowledge(ids, dead, read_ahead=read_ahead)
        self.report.timings.ack.add((time.perf_counter() - ack_started) * 1000.0)
        if self.gc_mode == "quiet" and self.report.batches % REFREEZE_BATCHES == 0:
            gc.freeze()  # what survived the batch is the engine's state: see quiet_gc
        if self._checkpointer is not None and self._checkpointer.needs_inline():
            inline_started = time.perf_counter()
            self.engine.store.checkpoint()  # type: ignore[attr-defined]
            self._checkpointer.done_inline()
            self.report.timeline.inline_checkpoint(
                self._wall(), (time.perf_counter() - inline_started) * 1000.0
            )
        if dead:
            log.warning(
                "partition %s: %d stream entries are not alarms, kept in %s",
                self.partition,
                len(dead),
                self.keys.dead,
            )
        self.report.entries += len(entries)
        self.report.batches += 1
        if self.report.first_commit is None:
            self.report.first_commit = committed
        self.report.last_commit = committed
        latencies: list[float] = []
        oldest: int | None = None
        for entry_id in ids:
            millis = entry_millis(entry_id)
            if millis is not None:
                latencies.append(committed * 1000.0 - millis)
                oldest = millis if oldest is None else min(oldest, millis)
        for value in latencies:
            self.report.latency.add(value)
        self._record(committed, len(entries), latencies, spent, oldest, gc_before)

    def _acknowledge(self, ids: list[str], dead: list[dict[str, str]], *, read_ahead: bool) -> None:
        """``XACK`` the committed entries. With dead letters, they and the
        acknowledgement go in one ``MULTI`` (together or not at all). Otherwise, with
        ``read_ahead``, the same round trip also reads the next new entries (without
        blocking): at a steady rate a consumer spent about as much CPU per batch on its
        two round trips as on the engine's commit. What is read there is pending like
        any read entry: a crash before it is handled leaves it to :meth:`recover`."""
        import redis

        try:
            if dead:
                pipe = self.client.pipeline(transaction=True)
                for letter in dead:
                    pipe.xadd(self.keys.dead, letter, maxlen=DEAD_MAXLEN, approximate=True)
                pipe.xack(self.key, GROUP, *ids)
                pipe.execute()
            elif read_ahead:
                ahead = ack_and_read(self._link, self.key, GROUP, self.consumer, ids, self.count)
                if ahead:
                    self._read_at = self._wall()
                    self._ahead = ahead
            else:  # one command is atomic by itself: no MULTI/EXEC round of three commands
                self.client.xack(self.key, GROUP, *ids)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerError(
                f"lost Redis before acknowledging {len(ids)} entries of {self.key}: they "
                "stay pending and are read again at the next start (the engine skips "
                "those it already stored)",
                retryable=True,
            ) from exc
        except redis.ResponseError as exc:
            raise BrokerError(
                f"Redis refused to acknowledge or read {self.key} for group {GROUP!r} "
                f"({exc}): was the stream or its group deleted? Start the consumer again "
                "to recreate them",
                retryable=False,
            ) from exc

    def _record(
        self,
        committed: float,
        entries: int,
        latencies: list[float],
        ingest_ms: float,
        oldest: int | None,
        gc_before: float,
    ) -> None:
        """Put the batch, and the checkpoint passes since the last one, on the timeline."""
        timeline = self.report.timeline
        if self._checkpointer is not None:
            passes = self._checkpointer.passes
            while passes:
                wall, milliseconds, wal_bytes = passes.popleft()
                timeline.checkpoint(wall, milliseconds, wal_bytes)
        gc_ms = sum(self.report.gc.total_ms) - gc_before if self.report.gc is not None else 0.0
        timeline.batch(
            committed,
            entries=entries,
            latencies_ms=latencies,
            ingest_ms=ingest_ms,
            read_age_ms=0.0 if oldest is None else max(0.0, self._read_at * 1000.0 - oldest),
            gc_ms=gc_ms,
        )
