"""Building ``Section`` lists from any format: headings, prose, steps, lists, tables.

Parsers feed lines and structure into a ``SectionBuilder``; it keeps the heading path and
recognises numbered procedure steps, so every format is chunked by the same rules.
"""

from __future__ import annotations

import re

from allo.domain import Section

NUMBERED = re.compile(r"^\s*(?:\d{1,2}|[a-z])[.)]\s+\S|^\s*(?:étape|step)\s+\d+\s*[:.-]", re.I)
BULLET = re.compile(r"^\s*[-*•·]\s+\S")


class SectionBuilder:
    """Accumulates blocks under the current heading path."""

    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []
        self._sections: list[Section] = []

    @property
    def heading_path(self) -> tuple[str, ...]:
        """The titles of the headings the next block falls under, outermost first."""
        return tuple(title for _, title in self._path)

    def heading(self, level: int, title: str) -> None:
        """Enter a heading of ``level`` (1 = top); deeper headings below it are closed."""
        title = " ".join(title.split())
        if not title:
            return
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, title))

    def block(self, text: str, kind: str | None = None) -> None:
        """Add a block of text; its kind is guessed from its lines when not given."""
        text = text.strip()
        if not text:
            return
        self._sections.append(Section(self.heading_path, text, kind or classify_block(text)))

    def lines(self, lines: list[str]) -> None:
        """Add plain lines: blank lines separate blocks; runs of list items stay together."""
        for block in split_blocks(lines):
            self.block(block)

    def sections(self) -> tuple[Section, ...]:
        """What was built, with consecutive list items of one procedure merged."""
        merged: list[Section] = []
        for section in self._sections:
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and section.kind in ("steps", "list")
                and previous.kind == section.kind
                and previous.heading_path == section.heading_path
            ):
                merged[-1] = Section(
                    previous.heading_path, previous.text + "\n" + section.text, section.kind
                )
            else:
                merged.append(section)
        return tuple(merged)


def classify_block(text: str) -> str:
    """``steps`` when most lines are numbered, ``list`` for bullets, else ``text``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "text"
    numbered = sum(1 for line in lines if NUMBERED.match(line))
    bullets = sum(1 for line in lines if BULLET.match(line))
    if numbered and numbered * 2 >= len(lines):
        return "steps"
    if bullets and bullets * 2 >= len(lines):
        return "list"
    if all(line.lstrip().startswith("|") for line in lines):
        return "table"
    return "text"


def split_blocks(lines: list[str]) -> list[str]:
    """Group lines into blocks at blank lines, keeping consecutive list items together."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return ["\n".join(block) for block in blocks]
