"""Incremental ingestion: skip unchanged, re-index changed, prune, report failures."""

from __future__ import annotations

import json
from pathlib import Path

from allo.config import EmbedderKind, Settings
from allo.knowledge.service import KnowledgeBase
from allo.testing.embedders import FakeEmbedder
from tests.knowledge.ingest.pdfs import simple_pdf


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_folder_ingest_then_incremental_runs(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write(docs, "wifi.md", "# Wi-Fi\n\n## Étapes\n\n1. Ouvrez l'interface.\n2. Changez la clé.")
    _write(docs, "sub/facture.txt", "Votre facture\n\nElle arrive le 5 du mois.")
    _write(docs, ".hidden/secret.md", "# caché")
    _write(docs, "notes.xyz", "ignored: unknown type inside a folder")
    first = kb.ingest([docs])
    assert len(first.added) == 2 and not first.failed
    assert kb.store.count_documents() == 2

    second = kb.ingest([docs])
    assert len(second.unchanged) == 2 and second.loaded == 0

    _write(docs, "wifi.md", "# Wi-Fi\n\n## Étapes\n\n1. Ouvrez l'interface.\n2. Changez le nom.")
    third = kb.ingest([docs])
    assert len(third.updated) == 1 and len(third.unchanged) == 1
    [wifi] = [d for d in kb.documents() if d.title == "Wi-Fi"]
    assert "Changez le nom" in " ".join(c.text for c in kb.document(wifi.id)[1])
    assert wifi.lang == "fr"


def test_prune_removes_documents_whose_file_is_gone(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    keep = _write(docs, "a.md", "# A\n\ntexte a")
    gone = _write(docs, "b.md", "# B\n\ntexte b")
    elsewhere = _write(tmp_path / "other", "c.md", "# C\n\ntexte c")
    kb.ingest([docs, elsewhere])
    gone.unlink()
    without = kb.ingest([docs])
    assert without.pruned == [] and kb.store.count_documents() == 3
    report = kb.ingest([docs], prune=True)
    assert report.pruned == [str(gone.resolve())]
    assert sorted(kb.store.sources()) == sorted([str(keep.resolve()), str(elsewhere.resolve())])


def test_jsonl_records_become_documents_and_prune_by_record(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    path = tmp_path / "kb.jsonl"
    records = [
        {"id": f"r{i}", "title": f"Article {i}", "text": f"Contenu numéro {i}."} for i in range(3)
    ]
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    assert len(kb.ingest([path]).added) == 3
    path.write_text("\n".join(json.dumps(r) for r in records[:2]), encoding="utf-8")
    report = kb.ingest([path], prune=True)
    assert report.pruned == [f"{path.resolve()}#r2"]
    assert len(report.unchanged) == 2


def test_bad_files_are_reported_and_others_still_load(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedder=EmbedderKind.FAKE, max_file_bytes=2000)
    kb = KnowledgeBase(settings)
    docs = tmp_path / "docs"
    _write(docs, "ok.md", "# Bon\n\nUn document correct.")
    (docs / "latin1.txt").write_bytes("Facture détaillée".encode("latin-1"))
    (docs / "empty.md").write_bytes(b"")
    (docs / "junk.pdf").write_bytes(b"\x00\x01garbage")
    (docs / "big.txt").write_text("mot " * 1000, encoding="utf-8")
    (docs / "real.pdf").write_bytes(simple_pdf(["Guide PDF", "Contenu du guide."]))
    report = kb.ingest([docs, tmp_path / "missing.md"])
    reasons = dict(report.failed)
    assert sorted(Path(source).name for source in reasons) == [
        "big.txt",
        "empty.md",
        "junk.pdf",
        "latin1.txt",
        "missing.md",
    ]
    assert "UTF-8" in reasons[str((docs / "latin1.txt").resolve())]
    assert "limit" in reasons[str((docs / "big.txt").resolve())]
    assert "no such file" in reasons[str((tmp_path / "missing.md").resolve())]
    assert sorted(d.title for d in kb.documents()) == ["Bon", "Guide PDF"]
    kb.close()


def test_a_broken_file_is_not_pruned(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    path = _write(docs, "a.md", "# A\n\ntexte")
    kb.ingest([docs])
    path.write_bytes("é".encode("latin-1"))
    report = kb.ingest([docs], prune=True)
    assert report.failed and not report.pruned
    assert kb.store.count_documents() == 1  # the last good version stays


def test_embeddings_are_cached_by_text(tmp_path: Path) -> None:
    from allo.knowledge.ingest.loader import Ingestor
    from allo.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    embedder = FakeEmbedder()
    ingestor = Ingestor(store, embedder, max_file_bytes=10**6)
    docs = tmp_path / "docs"
    _write(docs, "a.md", "# A\n\n## Un\n\nPremier paragraphe.\n\n## Deux\n\nSecond paragraphe.")
    ingestor.ingest_paths([docs])
    first = embedder.embedded_texts
    _write(
        docs, "a.md", "# A\n\n## Un\n\nPremier paragraphe.\n\n## Deux\n\nSecond paragraphe modifié."
    )
    ingestor.ingest_paths([docs])
    assert embedder.embedded_texts - first == 1  # only the edited chunk was embedded again
    assert all(item.vector is not None for item in store.iter_chunks())
    store.close()
