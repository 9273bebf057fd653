"""Files written whole or not at all.

A temporary file in the same folder is written, flushed to disk and renamed over the
target: a kill, a full disk or an exception half-way never leaves half a file where a
whole one is expected (an incidents file that looks complete but lacks rows, an empty
report, a truncated graph), and the previous file, if any, stays until the new one is
complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast


def written(path: Path) -> AbstractContextManager[TextIO]:
    """A UTF-8 text handle whose content replaces ``path`` once the block ends without an
    exception; on an exception the temporary file is removed and ``path`` is untouched."""
    return cast(AbstractContextManager[TextIO], _replacing(path, "w"))


def write_whole(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all."""
    with _replacing(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it: set it, then set it back
    os.umask(mask)
    return mask


#: read once, at import: the permissions a plain ``open`` would give a new file
_NEW_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def _replacing(path: Path, mode: str) -> Iterator[IO[Any]]:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the result keeps the target's permissions
        # or gets those of a new file, as a plain write would
        os.chmod(fd, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
