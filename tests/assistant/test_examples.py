"""Loading labelled utterances: JSON lines, CSV column variants, YAML, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allo.assistant.nlu import Example, ExamplesFileError, load_examples
from allo.errors import InvalidInputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        {"text": "ma box clignote", "intent": "pas_internet"},
        {"text": "x y", "intent": "oos"},
    ]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    assert load_examples(path) == [
        Example("ma box clignote", "pas_internet"),
        Example("x y", "oos"),
    ]
    assert not load_examples(path)[1].in_scope


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("text,intent", '"bonjour, ça va",salutation'),
        ("utterance,category", '"bonjour, ça va",salutation'),
        ("label,sentence", 'salutation,"bonjour, ça va"'),
        ("id,Text,Label", '1,"bonjour, ça va",salutation'),
    ],
)
def test_csv_column_variants(tmp_path: Path, header: str, row: str) -> None:
    path = write(tmp_path / "a.csv", f"{header}\n{row}\n")
    assert load_examples(path) == [Example("bonjour, ça va", "salutation")]


def test_yaml_and_several_files_combine(tmp_path: Path) -> None:
    yaml_file = write(tmp_path / "a.yaml", "intents:\n  merci:\n    - merci beaucoup\n    - top\n")
    csv_file = write(tmp_path / "b.csv", "text,intent\nsalut,salutation\n")
    examples = load_examples([yaml_file, csv_file])
    assert [e.intent for e in examples] == ["merci", "merci", "salutation"]


def test_bundled_french_intents_load_and_do_not_overlap() -> None:
    data = Path(__file__).parents[2] / "src/allo/assistant/data"
    train = load_examples(data / "intents_fr.yaml")
    test = load_examples(data / "intents_fr_test.yaml")
    intents = {e.intent for e in train}
    assert len(intents - {"oos"}) >= 15 and "oos" in intents
    assert {e.intent for e in test} == intents
    assert not {e.text.lower() for e in train} & {e.text.lower() for e in test}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.jsonl", '{"text": "ok", "intent": "a"}\n{"text": "ok"\n', "a.jsonl:2: invalid JSON"),
        ("a.jsonl", '{"text": "", "intent": "a"}\n', "a.jsonl:1: the text is missing"),
        ("a.jsonl", '{"text": "ok"}\n', "a.jsonl:1: the intent is missing"),
        ("a.jsonl", '["ok", "a"]\n', "expected an object"),
        ("a.csv", "phrase,intent\nok,a\n", "no text column"),
        ("a.csv", "text,intention\nok,a\n", "no label column"),
        ("a.csv", "text,intent\nok\n", "a.csv:2: 1 columns"),
        ("a.yaml", "intents: [a, b]\n", "expected a mapping"),
        ("a.yaml", "intents:\n  a: bonjour\n", "must list its utterances"),
        ("a.yaml", "intents: {a: [b\n", "invalid YAML"),
        ("a.txt", "hello\n", "unknown format .txt"),
        ("a.jsonl", "\n\n", "no examples"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(ExamplesFileError, match=message) as caught:
        load_examples(path)
    assert isinstance(caught.value, InvalidInputError)


def test_binary_missing_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_bytes(b"text,intent\x00\x01\x02")
    with pytest.raises(ExamplesFileError, match="binary"):
        load_examples(tmp_path / "b.csv")
    (tmp_path / "l.csv").write_bytes("text,intent\nété,a\n".encode("latin-1"))
    with pytest.raises(ExamplesFileError, match="UTF-8"):
        load_examples(tmp_path / "l.csv")
    with pytest.raises(ExamplesFileError, match="no such file"):
        load_examples(tmp_path / "missing.jsonl")
