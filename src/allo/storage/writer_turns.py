"""Writers of one SQLite file take turns: threads through a lock, processes through a file.

Shared by every store whose writers may live in several processes on one SQLite file
(``allo serve --workers N``); PostgreSQL locks rows and needs none of it.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

try:  # POSIX only; elsewhere the writers of one process still take turns
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class WriterTurns:
    """Writers of one SQLite file take turns: threads through a lock, processes through a file.

    SQLite admits one writer at a time. A writer refused by SQLite's lock sleeps in its
    busy handler, in growing steps (1, 2, 5, 10 ... 100 ms), however soon the other writer
    finishes; under ``allo serve --workers 2`` that sleep made most of the chat's p95
    (docs/assistant.md, "Chat under load"). Here the threads of a process queue on a
    ``threading.Lock`` and the processes on an exclusive ``flock`` of ``lock_path`` (a
    file beside the database), and the kernel wakes the next writer as soon as the lock
    is released. Held only around one write transaction (about a millisecond), from a
    worker thread, never from the event loop. The kernel drops a ``flock`` when its
    process dies, even by ``kill -9``: a crash never leaves the lock taken.

    Without ``lock_path`` (in-memory database), without ``fcntl`` (not POSIX) or when the
    lock file cannot be opened (read-only folder), only the threads take turns and the
    processes fall back on SQLite's busy handler, as before.
    """

    def __init__(self, lock_path: Path | None) -> None:
        self.lock_path = lock_path if fcntl is not None else None
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._fd_pid = 0  # a forked child reopens the file: a shared descriptor shares the lock

    def _descriptor(self) -> int | None:
        """The lock file's descriptor in this process, opened on first use (thread lock held)."""
        if self.lock_path is None:
            return None
        if self._fd is None or self._fd_pid != os.getpid():
            try:
                self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                log.warning(
                    "cannot open the writer lock file %s (%s): worker processes will wait "
                    "on SQLite's busy handler instead",
                    self.lock_path,
                    error.strerror,
                )
                self.lock_path = None
                return None
            self._fd_pid = os.getpid()
        return self._fd

    def __enter__(self) -> WriterTurns:
        self._threads.acquire()
        try:
            descriptor = self._descriptor()
            if descriptor is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self._fd is not None and self.lock_path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Close the lock file (the lock is never held between two writes)."""
        with self._threads:
            if self._fd is not None and self._fd_pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def writer_lock_path(url: str) -> Path | None:
    """The lock file of a SQLite database file's writers (``None``: not a SQLite file)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if str(parsed.database).startswith("file:"):
        return None  # a URI filename (shared memory and such): no path to put a file beside
    return Path(str(parsed.database) + "-writers.lock")
