"""The ``allo`` commands end to end, in-process with Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from allo.cli.app import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


runner = CliRunner()


def test_ingest_ask_documents_delete(env: Path) -> None:
    docs = env / "docs"
    docs.mkdir()
    (docs / "apn.md").write_text(
        "# Régler l'APN\n\n## Étapes\n\n1. Ouvrez Réglages.\n2. Saisissez internet.ondea.\n",
        encoding="utf-8",
    )
    (docs / "broken.txt").write_bytes(b"\xe9t\xe9")
    result = runner.invoke(app, ["ingest", str(docs)])
    assert result.exit_code == 1  # one file failed, and says why
    assert "added" in result.output and "broken.txt" in result.output and "UTF-8" in result.output

    asked = runner.invoke(app, ["ask", "Comment régler l'APN ?", "--json"])
    assert asked.exit_code == 0, asked.output
    body = json.loads(asked.output)
    assert body["citations"][0]["title"] == "Régler l'APN"
    assert "internet.ondea" in body["answer"]

    plain = runner.invoke(app, ["ask", "Comment régler l'APN ?"])
    assert "[1] Régler l'APN" in plain.output and "Sources" in plain.output

    listing = runner.invoke(app, ["documents"])
    assert "Régler l'APN" in listing.output
    document_id = body["citations"][0]["document_id"]
    assert runner.invoke(app, ["documents", "delete", document_id]).exit_code == 0
    missing = runner.invoke(app, ["documents", "delete", document_id])
    assert missing.exit_code == 2 and "no document" in missing.output


def test_ingest_json_report_and_prune(env: Path) -> None:
    docs = env / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\ntexte", encoding="utf-8")
    (docs / "b.md").write_text("# B\n\ntexte", encoding="utf-8")
    first = json.loads(runner.invoke(app, ["ingest", str(docs), "--json"]).output)
    assert first["added"] == 2 and first["failed"] == []
    (docs / "b.md").unlink()
    second = json.loads(runner.invoke(app, ["ingest", str(docs), "--prune", "--json"]).output)
    assert second["pruned"] == 1 and second["unchanged"] == 1


def test_invalid_setting_names_the_variable(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_RETRIEVAL__MODE", "magic")
    result = runner.invoke(app, ["ask", "bonjour"])
    assert result.exit_code == 2
    assert "ALLO_RETRIEVAL__MODE" in result.output


def test_eval_retrieval_prints_one_json_object(env: Path) -> None:
    corpus = env / "corpus.jsonl"
    questions = env / "questions.jsonl"
    paragraphs = {
        "p1": "Le code PUK débloque une carte SIM après trois erreurs de code PIN.",
        "p2": "La facture détaille l'abonnement, les options et les consommations hors forfait.",
        "p3": "La fibre arrive dans le logement par la prise terminale optique (PTO).",
    }
    corpus.write_text(
        "\n".join(json.dumps({"id": k, "title": k, "text": v}) for k, v in paragraphs.items()),
        encoding="utf-8",
    )
    asked = [
        ("Comment débloquer ma SIM ?", "p1"),
        ("Que contient la facture ?", "p2"),
        ("Où arrive la fibre ?", "p3"),
    ]
    questions.write_text(
        "\n".join(json.dumps({"question": q, "paragraph_id": p}) for q, p in asked),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["eval", "retrieval", "--corpus", str(corpus), "--questions", str(questions), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert set(metrics) == {"lexical", "dense", "hybrid"}
    for values in metrics.values():
        assert set(values) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "n"}
        assert values["n"] == 3
    assert metrics["lexical"]["recall@1"] == 1.0

    only = runner.invoke(
        app,
        [
            "eval",
            "retrieval",
            "--corpus",
            str(corpus),
            "--questions",
            str(questions),
            "--mode",
            "lexical",
            "--k",
            "5",
            "--json",
        ],
    )
    assert set(json.loads(only.output)) == {"lexical"}
    assert "recall@5" in json.loads(only.output)["lexical"]


def test_eval_reports_bad_question_file(env: Path) -> None:
    corpus = env / "c.jsonl"
    corpus.write_text(json.dumps({"id": "p", "title": "t", "text": "x"}), encoding="utf-8")
    questions = env / "q.jsonl"
    questions.write_text('{"question": "sans id"}', encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "eval",
            "retrieval",
            "--corpus",
            str(corpus),
            "--questions",
            str(questions),
            "--mode",
            "lexical",
        ],
    )
    assert result.exit_code == 2 and "paragraph_id" in result.output
