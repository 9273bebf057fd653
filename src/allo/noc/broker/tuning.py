"""Where a consumer's time goes, and what keeps its tail latency short.

The arrival-to-commit p99 of a consumer is made of rare long pauses, not of its average
cost (it has twice the capacity of 10,000 alarms/s on two cores). Three things pause it:

- SQLite's WAL auto-checkpoint: once the WAL passes 1,000 pages, the connection that
  commits copies the WAL into the database file and fsyncs it, inside that commit;
- Python's generational GC: a gen-2 collection walks every object the engine keeps
  (open incidents, known ids), hundreds of thousands of them, all long-lived;
- large engine steps (many incidents closing at once).

:class:`StepTimings` and :class:`GcPauses` measure them (printed in the consumer's JSON
summary); :class:`BackgroundCheckpointer` and :func:`quiet_gc` remove the first two from
the commit path.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from allo.noc.broker.latency import LatencyHistogram

log = logging.getLogger(__name__)


@dataclass
class StepTimings:
    """Per batch: how long the engine's ingest (its commit included) and the XACK took."""

    ingest: LatencyHistogram = field(default_factory=LatencyHistogram)
    ack: LatencyHistogram = field(default_factory=LatencyHistogram)
    largest_batch: int = 0

    def to_json(self) -> dict[str, object]:
        def short(h: LatencyHistogram) -> dict[str, object]:
            return {
                "p50_ms": h.percentile(0.5),
                "p99_ms": h.percentile(0.99),
                "max_ms": round(h.max_ms, 2),
                "over_50_ms": sum(v for k, v in h.buckets.items() if k * 0.1 >= 50.0),
            }

        return {
            "ingest": short(self.ingest),
            "ack": short(self.ack),
            "largest_batch": self.largest_batch,
        }


class GcPauses:
    """Counts the garbage collector's passes by generation and how long they stopped us.

    Installed as a ``gc.callbacks`` hook (two clock reads per collection, nothing per
    object); :meth:`close` removes it."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._hook)

    def _hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info.get("generation", 0))
        spent = (time.perf_counter() - self._started) * 1000.0
        self.count[generation] += 1
        self.collected[generation] += int(info.get("collected", 0))
        self.total_ms[generation] += spent
        self.max_ms[generation] = max(self.max_ms[generation], spent)

    def close(self) -> None:
        if self._hook in gc.callbacks:
            gc.callbacks.remove(self._hook)

    def to_json(self) -> dict[str, object]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "collected": self.collected[g],
                "total_ms": round(self.total_ms[g], 1),
                "max_ms": round(self.max_ms[g], 2),
            }
            for g in range(3)
        }


def quiet_gc() -> None:
    """Move what exists now out of every later collection (``gc.freeze()``).

    Called once the engine is warm, and again every few batches by the consumer
    (:data:`REFREEZE_BATCHES`): an engine keeps what it builds (each alarm's id, its
    open incidents) for a long time, so a gen-2 collection walks more objects at every
    pass, hundreds of milliseconds in one go. Frozen objects are still freed by reference
    counting as usual; only garbage in reference cycles that is older than a few batches
    stays (the consumer's summary reports what gen-2 passes still find, ``gc.gen2``)."""
    gc.collect()
    gc.freeze()


REFREEZE_BATCHES = 20


def sqlite_file(url: str) -> str | None:
    """The database file of a ``sqlite:///`` URL, or ``None`` (another database, memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


class BackgroundCheckpointer:
    """Checkpoints a SQLite WAL from a thread of its own, off the commit path.

    The committing connections run with ``PRAGMA wal_autocheckpoint=0`` (set by the store);
    this thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every
    ``interval`` seconds: it copies committed pages into the database file and fsyncs it
    without ever waiting for, or blocking, the writer, and SQLite releases the GIL while it
    works. The WAL then restarts from its beginning at the next commit. If the WAL still
    grows past ``max_wal_bytes`` (a checkpoint that cannot keep up), :meth:`needs_inline`
    tells the writer to checkpoint itself, as SQLite would have: the WAL stays bounded."""

    def __init__(
        self, path: str, *, interval: float = 0.5, max_wal_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.path = path
        self.interval = interval
        self.max_wal_bytes = max_wal_bytes
        self.checkpoints = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.failures = 0
        self.inline = 0  # checkpoints the writer had to run itself (WAL over its bound)
        self.max_wal_seen = 0
        self.restarts = 0  # passes that found the WAL started over (it stays small)
        self.stale_after = max(10.0, 20 * interval)
        self._behind = False
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def needs_inline(self) -> bool:
        """True when this thread is not keeping up (its last checkpoint found the WAL
        over ``max_wal_bytes``, or none succeeded for ``stale_after`` seconds): the writer
        should checkpoint now, as SQLite would have."""
        stale = time.monotonic() - self._last_ok > self.stale_after
        return self._behind or stale

    def done_inline(self) -> None:
        """The writer checkpointed itself."""
        self.inline += 1
        self._behind = False
        self._last_ok = time.monotonic()

    @staticmethod
    def _pass(connection: sqlite3.Connection, tries: int = 8) -> int:
        """Checkpoint until every frame of the WAL is in the database file; returns how
        many frames the WAL held. The writer restarts the WAL from its beginning only
        when a checkpoint copied all of it, and it commits every few milliseconds: a
        commit during a pass leaves the last frames behind, so a short second pass copies
        them (without it the WAL was seen growing to 60 MB under load)."""
        largest = 0
        for _ in range(tries):
            # fetchall: a statement left unfinished would hold a read snapshot, and the
            # writer could never restart the WAL
            ((_busy, frames, done),) = connection.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchall()
            largest = max(largest, int(frames))
            if frames < 0 or done == frames:
                return int(frames) if frames < 0 else largest
        return largest

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            ((page,),) = connection.execute("PRAGMA page_size").fetchall()
            last_frames = 0
            while not self._stop.wait(self.interval):
                started = time.perf_counter()
                try:
                    frames = self._pass(connection)
                except sqlite3.Error as exc:  # locked: the next pass retries
                    self.failures += 1
                    log.debug("background checkpoint of %s failed: %s", self.path, exc)
                    continue
                if frames < 0:  # not in WAL mode (yet): nothing done, the writer's turn
                    self.failures += 1
                    continue
                spent = (time.perf_counter() - started) * 1000.0
                self.checkpoints += 1
                self.total_ms += spent
                self.max_ms = max(self.max_ms, spent)
                self.max_wal_seen = max(self.max_wal_seen, frames * page)
                if frames < last_frames:  # the writer started the WAL over since last pass
                    self.restarts += 1
                last_frames = frames
                self._behind = frames * page > self.max_wal_bytes
                self._last_ok = time.monotonic()
        finally:
            connection.close()

    def to_json(self) -> dict[str, object]:
        return {
            "checkpoints": self.checkpoints,
            "total_ms": round(self.total_ms, 1),
            "max_ms": round(self.max_ms, 2),
            "failures": self.failures,
            "inline": self.inline,
            "max_wal_bytes_seen": self.max_wal_seen,
            "wal_restarts": self.restarts,
        }
