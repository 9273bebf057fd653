"""One live engine per stream on a machine: an exclusive lock file.

Why: a streaming engine holds its stream's open incidents, silences, maintenance windows
and event versions in memory, and numbers its alarms. Two processes on one stream (``allo
serve --workers 2``: each worker opens the live engine) would both number alarms (their
writes then fail on the store's ``(stream, seq)`` key, and each rebuild takes in the
other's open incidents), split related alarms between two pipelines, and each miss the
silences added through the other. The lock is the operating system's (``flock``): it is
released when its process ends, however it ends, so a worker that dies hands the engine
to the next one asked for it, which rebuilds the open incidents from the store as a
restart does.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from allo.errors import EngineBusyError

logger = logging.getLogger(__name__)


class StreamLock:
    """Holds ``path`` locked while this process runs the stream's engine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.unavailable = False  # no lock file can be made there (see _open)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`EngineBusyError` when another engine holds it."""
        if self._fd is not None or self.unavailable:
            return
        fd = self._open()
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise EngineBusyError(
                f"the NOC engine of this stream runs in another process{holder}: it needs "
                "one process, so serve the NOC with `allo serve --workers 1`, or send "
                "alarms through the broker (`allo noc publish` / `allo noc consume`)"
            ) from None
        self._fd = fd  # held from here, whatever happens to the pid below
        try:  # who holds it, for the message of the others; a write may fail (disk full)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass

    def _open(self) -> int | None:
        """The lock file, read-write (created), else read-only (enough for ``flock``), else
        ``None``: a data folder that cannot hold it (read-only, another user's) runs the
        engine unguarded, as before the lock existed, and says so once in the log."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            pass
        try:
            return os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            self.unavailable = True
            logger.warning(
                "no lock file at %s (%s): the NOC engine runs without the one-process guard",
                self.path,
                type(exc).__name__,
            )
            return None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the lock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
