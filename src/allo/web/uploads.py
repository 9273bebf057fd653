"""Safe handling of uploaded files: bounded reads and names that cannot become paths."""

from __future__ import annotations

import re
import unicodedata

from fastapi import UploadFile

from allo.errors import FileTooLargeError, InvalidInputError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """A plain file name from a user's: no folders, no dots in front, ASCII only.

    ``../../etc/passwd`` becomes ``passwd``; ``C:\\docs\\Facture été.pdf`` becomes
    ``Facture_ete.pdf``. The suffix is kept, since it selects the parser.
    """
    if not name:
        raise InvalidInputError("the upload has no file name; send it as multipart field 'file'")
    base = re.split(r"[\\/]", name)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("_", ascii_name).strip("._")[:120]
    if not cleaned or "." not in cleaned:
        raise InvalidInputError(
            f"unusable file name {name!r}: give the file a name with its type, e.g. guide.pdf"
        )
    return cleaned


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read an upload, refusing as soon as it passes ``limit`` bytes (never all in memory)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise FileTooLargeError(
                f"{upload.filename}: over the {limit / 1e6:.0f} MB upload limit; "
                "split the file or raise ALLO_MAX_FILE_BYTES"
            )
        parts.append(chunk)
    return b"".join(parts)
