"""Cut parsed documents into retrievable chunks that follow their structure.

Rules, in order: a chunk never spans two heading paths; a numbered procedure stays whole
unless it is longer than ``max_steps_words`` (then it is cut between steps, never inside
one); short neighbouring blocks under one heading are merged up to ``max_words``; long
prose is cut between sentences. The e5 model reads at most 512 tokens, about 300 French
words, which bounds every chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from allo.domain import Chunk, ParsedDocument, Section
from allo.knowledge.ingest.parsers.sections import NUMBERED

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-ÖØ-Þ0-9«\"(])")


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    """Sizes in words; defaults keep chunks inside e5's 512-token window."""

    max_words: int = 180
    max_steps_words: int = 280


def _words(text: str) -> int:
    return len(text.split())


def _split_steps(text: str, limit: int) -> list[str]:
    """Cut a procedure between steps; lines that continue a step stay with it."""
    steps: list[list[str]] = []
    for line in text.splitlines():
        if NUMBERED.match(line) or not steps:
            steps.append([line])
        else:
            steps[-1].append(line)
    return _pack(["\n".join(step) for step in steps], limit, "\n")


def _split_prose(text: str, limit: int) -> list[str]:
    """Cut prose between sentences (a single over-long sentence is cut between words)."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        while len(words) > limit:
            pieces.append(" ".join(words[:limit]))
            words = words[limit:]
        if words:
            pieces.append(" ".join(words))
    return _pack(pieces, limit, " ")


def _pack(pieces: list[str], limit: int, joiner: str) -> list[str]:
    """Greedily join consecutive pieces while the total stays within ``limit`` words."""
    packed: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        count = _words(piece)
        if current and size + count > limit:
            packed.append(joiner.join(current))
            current, size = [], 0
        current.append(piece)
        size += count
    if current:
        packed.append(joiner.join(current))
    return packed


def _split_section(section: Section, policy: ChunkingPolicy) -> list[Section]:
    if section.kind == "steps":
        if _words(section.text) <= policy.max_steps_words:
            return [section]
        parts = _split_steps(section.text, policy.max_words)
    elif _words(section.text) <= policy.max_words:
        return [section]
    elif section.kind in ("list", "table"):
        parts = _pack(section.text.splitlines(), policy.max_words, "\n")
    else:
        parts = _split_prose(section.text, policy.max_words)
    return [Section(section.heading_path, part, section.kind) for part in parts]


def chunk_document(
    parsed: ParsedDocument, document_id: str, policy: ChunkingPolicy | None = None
) -> list[Chunk]:
    """The chunks of one document, in reading order, ids ``{document_id}:{ordinal}``."""
    policy = policy or ChunkingPolicy()
    pieces = [piece for section in parsed.sections for piece in _split_section(section, policy)]
    groups: list[list[Section]] = []
    for piece in pieces:
        group = groups[-1] if groups else None
        if (
            group is not None
            and group[0].heading_path == piece.heading_path
            and sum(_words(item.text) for item in group) + _words(piece.text)
            <= (policy.max_steps_words if piece.kind == "steps" else policy.max_words)
            and not (piece.kind == "steps" and any(item.kind == "steps" for item in group))
        ):
            group.append(piece)
        else:
            groups.append([piece])
    chunks = []
    for ordinal, group in enumerate(groups):
        kinds = {item.kind for item in group}
        chunks.append(
            Chunk(
                id=f"{document_id}:{ordinal}",
                document_id=document_id,
                ordinal=ordinal,
                text="\n\n".join(item.text for item in group),
                heading_path=group[0].heading_path,
                kind="steps" if "steps" in kinds else group[0].kind,
            )
        )
    return chunks
