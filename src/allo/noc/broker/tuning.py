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
from collections import deque
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

    Called once the engine is warm, and again after every batch by the consumer
    (:data:`REFREEZE_BATCHES`): an engine keeps what it builds (each alarm's id, its
    open incidents) for a long time, so a gen-2 collection walks more objects at every
    pass, hundreds of milliseconds in one go. ``gc.freeze()`` itself costs nothing (it
    moves lists, not objects). Frozen objects are still freed by reference counting as
    usual; only garbage in reference cycles that outlives its batch stays. In every
    measured run no collection of any generation found any (the consumer's summary
    reports what they find, ``gc``): on the 24V set a step makes no cyclic garbage."""
    gc.collect()
    gc.freeze()


#: Refreezing after every batch (it was every 20) keeps gen-1 and gen-2 passes from
#: walking what the last batches kept: on the 24V set, 60,000 alarms in batches of 100,
#: GC time fell from 204 to 64 ms and no gen-1 pass was left (one run, busy machine).
REFREEZE_BATCHES = 1

#: WAL size past which the writer restarts the WAL between two batches (see
#: :class:`BackgroundCheckpointer`). Each such pass costs the writer an fsync (median
#: 3-11 ms, at most 25-135 ms, measured on 2 busy cores), so it stays rare: at 5,000
#: alarms/s a consumer's WAL grows by a few MB a second, one pass every 15-20 s.
WAL_RESTART_BYTES = 64 * 1024 * 1024


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
    works.

    Copying is not enough to keep the WAL small: SQLite starts the WAL over only when the
    writer begins a transaction while *every* frame is already copied, and a busy writer
    commits again during each pass (which takes tens of milliseconds with its fsync): no
    restart at all in 15 s of a writer committing every 10 ms, and 60-80 MB WALs in
    benchmark runs. So once a pass finds the WAL over ``max_wal_bytes``,
    :meth:`needs_inline` asks the writer to checkpoint itself *between* two of its
    transactions: the thread has already copied all but the last few batches, so the
    writer's pass copies only those and fsyncs (a few milliseconds, not a copy of the
    whole WAL), and its next transaction restarts the WAL. A thread that stopped working
    (no pass for ``stale_after`` seconds) also hands the checkpoints back to the writer,
    so the WAL stays bounded whatever happens."""

    def __init__(
        self, path: str, *, interval: float = 0.5, max_wal_bytes: int = WAL_RESTART_BYTES
    ) -> None:
        self.path = path
        self.interval = interval
        self.max_wal_bytes = max_wal_bytes
        self.checkpoints = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        self.failures = 0
        self.inline = 0  # checkpoints the writer ran between batches (WAL over its bound)
        self.max_wal_seen = 0
        self.restarts = 0  # passes that found the WAL started over (it stays small)
        self.stale_after = max(10.0, 20 * interval)
        # (wall-clock end, milliseconds, WAL bytes) of recent passes, for the consumer's
        # timeline; appended by the thread, drained by the consumer (deque: thread-safe)
        self.passes: deque[tuple[float, float, int]] = deque(maxlen=10_000)
        self._behind = False
        self._last_ok = time.monotonic()
        self._page = 0  # the database's page size, read at the first pass
        self._last_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def needs_inline(self) -> bool:
        """True when the writer should checkpoint between two transactions: the last pass
        found the WAL over ``max_wal_bytes`` (it was not restarted since), or no pass
        succeeded for ``stale_after`` seconds."""
        stale = time.monotonic() - self._last_ok > self.stale_after
        return self._behind or stale

    def done_inline(self) -> None:
        """The writer checkpointed itself."""
        self.inline += 1
        self._behind = False
        self._last_ok = time.monotonic()

    @staticmethod
    def _pass(connection: sqlite3.Connection, tries: int = 8) -> int:
        """Checkpoint until the pass copied every frame it saw; returns how many frames
        the WAL held. (A pass copies the frames committed before it started; a pass
        that could not copy them all, a reader being in the way, is followed by a short
        second one. Frames committed *during* a pass are the next pass's work.)"""
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
            while not self._stop.wait(self.interval):
                self.run_pass(connection)
        finally:
            connection.close()

    def run_pass(self, connection: sqlite3.Connection) -> None:
        """One pass of the thread and its bookkeeping (also callable on its own, so that
        a test can order passes and commits as a busy writer does)."""
        started = time.perf_counter()
        try:
            if not self._page:
                ((self._page,),) = connection.execute("PRAGMA page_size").fetchall()
            frames = self._pass(connection)
        except sqlite3.Error as exc:  # locked: the next pass retries
            self.failures += 1
            log.debug("background checkpoint of %s failed: %s", self.path, exc)
            return
        if frames < 0:  # not in WAL mode (yet): nothing done, the writer's turn
            self.failures += 1
            return
        spent = (time.perf_counter() - started) * 1000.0
        wal_bytes = frames * self._page
        self.checkpoints += 1
        self.total_ms += spent
        self.max_ms = max(self.max_ms, spent)
        self.max_wal_seen = max(self.max_wal_seen, wal_bytes)
        self.passes.append((time.time(), spent, wal_bytes))
        if frames < self._last_frames:  # the writer started the WAL over since last pass
            self.restarts += 1
        self._last_frames = frames
        self._behind = wal_bytes > self.max_wal_bytes
        self._last_ok = time.monotonic()

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
