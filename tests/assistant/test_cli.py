"""``allo eval intents`` through Typer's runner, with the fake embedder on tiny files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from allo.cli.intents import intents

from .test_classifier import make_examples

app = typer.Typer()
app.command("intents")(intents)
app.command("other")(lambda: None)  # two commands: "intents" stays a sub-command
runner = CliRunner()
KEYS = {"accuracy", "macro_f1", "oos_recall", "oos_precision", "n", "train_seconds"}


@pytest.fixture(autouse=True)
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))


def write_jsonl(path: Path, seed: int, per_intent: int) -> Path:
    lines = [
        json.dumps({"text": e.text, "intent": e.intent}) for e in make_examples(seed, per_intent)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, seed: int, per_intent: int) -> Path:
    rows = [f'"{e.text}",{e.intent}' for e in make_examples(seed, per_intent)]
    path.write_text("utterance,category\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_train_test_with_baseline_json(tmp_path: Path) -> None:
    train_a = write_jsonl(tmp_path / "a.jsonl", 0, 8)
    train_b = write_csv(tmp_path / "b.csv", 3, 6)
    test = write_jsonl(tmp_path / "t.jsonl", 1, 4)
    args = ["intents", "--train", str(train_a), "--train", str(train_b), "--test", str(test)]
    result = runner.invoke(app, [*args, "--baseline", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) >= KEYS and set(scores["baseline"]) >= KEYS
    assert scores["n"] == scores["baseline"]["n"] == 20
    assert scores["accuracy"] >= 0.8
    assert (tmp_path / "data" / "cache" / "intent-embeddings").is_dir()


def test_cross_validation(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "a.jsonl", 0, 10)
    result = runner.invoke(app, ["intents", "--train", str(train), "--cv", "3", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["n"] == 50 and scores["folds"] == 3 and "baseline" not in scores


def test_without_embedder_tfidf_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "none")
    train = write_jsonl(tmp_path / "a.jsonl", 0, 10)
    test = write_jsonl(tmp_path / "t.jsonl", 1, 4)
    result = runner.invoke(app, ["intents", "--train", str(train), "--test", str(test), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["model"] == "tfidf-linearsvc+oos-threshold" and scores["accuracy"] >= 0.8
    assert not (tmp_path / "data" / "cache" / "intent-embeddings").exists()


def test_human_output(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "a.jsonl", 0, 8)
    result = runner.invoke(app, ["intents", "--train", str(train), "--test", str(train)])
    assert result.exit_code == 0, result.output
    assert "accuracy=" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "either --test"),
        (["--cv", "3", "--test", "TRAIN"], "either --test"),
        (["--cv", "20"], "at least 20 examples"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    train = write_jsonl(tmp_path / "a.jsonl", 0, 8)
    extra = [str(train) if arg == "TRAIN" else arg for arg in extra]
    result = runner.invoke(app, ["intents", "--train", str(train), *extra, "--json"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bad_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("phrase,intent\nbonjour,salutation\n", encoding="utf-8")
    result = runner.invoke(app, ["intents", "--train", str(bad), "--cv", "2", "--json"])
    assert result.exit_code == 2
    assert "no text column" in " ".join(result.output.split())
