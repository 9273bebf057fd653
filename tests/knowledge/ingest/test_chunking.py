"""Chunks follow headings, keep procedures whole where possible, and lose no text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from allo.domain import ParsedDocument, Section
from allo.knowledge.ingest.chunking import ChunkingPolicy, chunk_document


def _doc(*sections: Section) -> ParsedDocument:
    return ParsedDocument(title="T", sections=sections)


def test_procedure_stays_in_one_chunk() -> None:
    steps = "\n".join(f"{i}. Faites l'action numéro {i} avec soin." for i in range(1, 9))
    doc = _doc(
        Section(("T",), "Introduction courte."),
        Section(("T", "Étapes"), steps, "steps"),
        Section(("T", "Étapes"), "Si rien ne marche, appelez le 3900."),
    )
    chunks = chunk_document(doc, "d")
    steps_chunks = [c for c in chunks if c.kind == "steps"]
    assert len(steps_chunks) == 1
    assert steps_chunks[0].text.startswith("1. Faites") and "8. Faites" in steps_chunks[0].text
    assert steps_chunks[0].heading_path == ("T", "Étapes")
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.id == f"d:{c.ordinal}" for c in chunks)


def test_different_headings_never_share_a_chunk() -> None:
    doc = _doc(Section(("T", "A"), "Texte A."), Section(("T", "B"), "Texte B."))
    chunks = chunk_document(doc, "d")
    assert [c.heading_path for c in chunks] == [("T", "A"), ("T", "B")]


def test_long_procedure_is_cut_between_steps() -> None:
    steps = "\n".join(f"{i}. " + "mot " * 40 + f"fin{i}." for i in range(1, 13))
    chunks = chunk_document(_doc(Section(("T",), steps, "steps")), "d", ChunkingPolicy(100, 150))
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.splitlines()[0][0].isdigit()  # each part starts on a step
        assert len(chunk.text.split()) <= 150


def test_long_prose_is_cut_between_sentences() -> None:
    text = " ".join(f"Phrase numéro {i} sur la facture." for i in range(100))
    chunks = chunk_document(_doc(Section(("T",), text)), "d", ChunkingPolicy(max_words=50))
    assert len(chunks) > 1
    assert all(c.text.endswith("facture.") for c in chunks)


words = st.text(alphabet="abcdéèxyz", min_size=1, max_size=8)
sections = st.lists(
    st.builds(
        Section,
        st.sampled_from([("T",), ("T", "A"), ("T", "B")]),
        st.lists(words, min_size=1, max_size=400).map(" ".join),
        st.sampled_from(["text", "steps", "list"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(sections)
def test_no_word_is_lost_and_sizes_hold(parts: list[Section]) -> None:
    policy = ChunkingPolicy(max_words=60, max_steps_words=90)
    chunks = chunk_document(ParsedDocument("T", tuple(parts)), "d", policy)
    original = [w for part in parts for w in part.text.split()]
    assert [w for c in chunks for w in c.text.split()] == original
    for chunk in chunks:
        assert len(chunk.text.split()) <= policy.max_steps_words
