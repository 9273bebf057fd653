"""When a consumer's latency tail happened, and what happened at that time.

A p99 says how long the slowest alarms waited, not why. :class:`Timeline` keeps, for each
second of wall-clock time, what the consumer's batches did (how many, how large, how long
the engine's ingest took, how old their entries already were when they were read, the
longest latency, how many alarms waited over 50 ms) next to the events that can pause a
consumer in that second: garbage collections, WAL checkpoints (from the background
thread or inline in the writer) and the batch size cap. Reading it next to the merged
histogram shows whether the slow alarms cluster at the start, at checkpoints, on one
consumer, or waited in Redis before they were read (the CPU, not the consumer's work).

Memory is bounded: only the last :data:`KEEP_SECONDS` seconds are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

KEEP_SECONDS = 3600
SLOW_MS = 50.0


@dataclass
class Second:
    """What one consumer did during one wall-clock second (by commit time)."""

    second: int
    batches: int = 0
    entries: int = 0
    largest_batch: int = 0
    over_50_ms: int = 0  # alarms whose arrival-to-commit latency passed 50 ms
    max_latency_ms: float = 0.0
    max_ingest_ms: float = 0.0  # the engine's ingest, its commit included
    max_read_age_ms: float = 0.0  # how old a batch's oldest entry was when it was read
    gc_ms: float = 0.0
    checkpoint_ms: float = 0.0  # background checkpoint passes that ended in this second
    checkpoint_wal_bytes: int = 0  # the largest WAL such a pass found
    inline_checkpoints: int = 0
    inline_checkpoint_ms: float = 0.0

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 1)
        return out


class Timeline:
    """Per-second statistics of one consumer (see the module docstring)."""

    def __init__(self, keep: int = KEEP_SECONDS) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 second, not {keep}")
        self.keep = keep
        self._seconds: OrderedDict[int, Second] = OrderedDict()

    def at(self, wall: float) -> Second:
        """The statistics of the second containing ``wall`` (created when new)."""
        key = int(wall)
        found = self._seconds.get(key)
        if found is None:
            found = self._seconds[key] = Second(key)
            while len(self._seconds) > self.keep:
                self._seconds.popitem(last=False)
        return found

    def batch(
        self,
        wall: float,
        *,
        entries: int,
        latencies_ms: list[float],
        ingest_ms: float,
        read_age_ms: float,
        gc_ms: float,
    ) -> None:
        """Record one committed batch (``wall``: its commit time)."""
        second = self.at(wall)
        second.batches += 1
        second.entries += entries
        second.largest_batch = max(second.largest_batch, entries)
        second.over_50_ms += sum(1 for value in latencies_ms if value > SLOW_MS)
        if latencies_ms:
            second.max_latency_ms = max(second.max_latency_ms, max(latencies_ms))
        second.max_ingest_ms = max(second.max_ingest_ms, ingest_ms)
        second.max_read_age_ms = max(second.max_read_age_ms, read_age_ms)
        second.gc_ms += gc_ms

    def checkpoint(self, wall: float, milliseconds: float, wal_bytes: int) -> None:
        """A background checkpoint pass that ended at ``wall``."""
        second = self.at(wall)
        second.checkpoint_ms += milliseconds
        second.checkpoint_wal_bytes = max(second.checkpoint_wal_bytes, wal_bytes)

    def inline_checkpoint(self, wall: float, milliseconds: float) -> None:
        """A checkpoint the writer ran itself, on the commit path."""
        second = self.at(wall)
        second.inline_checkpoints += 1
        second.inline_checkpoint_ms += milliseconds

    def seconds(self) -> list[Second]:
        return list(self._seconds.values())

    def to_json(self, *, slow_only: bool = False) -> list[dict[str, object]]:
        """Every kept second, oldest first; with ``slow_only``, those where an alarm
        waited over 50 ms or the writer checkpointed inline."""
        return [
            s.to_json()
            for s in self._seconds.values()
            if not slow_only or s.over_50_ms or s.inline_checkpoints
        ]
