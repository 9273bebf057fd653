"""What a parser is, and the checks every input goes through before one runs."""

from __future__ import annotations

from typing import Protocol

from allo.domain import ParsedDocument
from allo.errors import CorruptFileError, InvalidInputError


class Parser(Protocol):
    """Turns the bytes of one file into one or more documents (JSON lines give many)."""

    def __call__(self, data: bytes, name: str) -> list[ParsedDocument]: ...


def decode_text(data: bytes, name: str) -> str:
    """Decode text as UTF-8 (or UTF-16 with a byte-order mark); refuse anything else.

    Guessing a legacy encoding silently would index mojibake, so the error says how to
    convert the file instead.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{name}: broken UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        raise CorruptFileError(
            f"{name}: looks like binary data, not text; give a Markdown, HTML, PDF, DOCX, "
            "plain text or JSON lines file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{name}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"convert it first, e.g. `iconv -f WINDOWS-1252 -t UTF-8 {name}`"
        ) from exc
    controls = sum(1 for char in text[:8192] if ord(char) < 32 and char not in "\n\r\t\f")
    if controls > max(8, len(text[:8192]) // 50):
        raise CorruptFileError(f"{name}: looks like binary data, not text")
    return text


def title_from_name(name: str) -> str:
    """A readable title from a file name: ``wifi-lent.md`` -> ``Wifi lent``."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    words = stem.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name
