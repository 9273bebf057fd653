"""The generation evaluation on a tiny PIAF-shaped corpus, with a scripted model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from allo.config import RetrievalMode, RetrievalSettings
from allo.evaluation.generation import (
    LabelledSentence,
    build_support_set,
    contains_answer,
    evaluate_generation,
    evaluate_support,
    load_labelled,
    load_qa,
    normalise,
    save_labelled,
)
from allo.evaluation.retrieval import EvaluationIndex
from allo.gateway.call import GatewayCall
from allo.knowledge.answer import ExtractiveAnswerer
from allo.knowledge.grounded import GroundedAnswerer, SupportChecker
from allo.testing.gateway import ScriptedGateway

PARAGRAPHS = [
    (
        "p-0",
        "Ouganda",
        "L'Ouganda connaît une croissance moyenne de 6,5 % dans les années 1990. "
        "Le taux de pauvreté est divisé par trois en vingt ans.",
    ),
    (
        "p-1",
        "Ouganda",
        "Specioza Kazibwe fut vice-présidente du Parlement de 1994 à 2003. "
        "Le Parlement compte en 2016 plus d'un tiers de députées.",
    ),
    (
        "p-2",
        "Sport",
        "Le ministère estime à 100 000 le nombre de salariés du secteur sportif. "
        "Les ménages dépensent 14,2 milliards d'euros en 2003.",
    ),
    (
        "p-3",
        "Sport",
        "Le football est le sport le plus pratiqué en France. "
        "Le rugby est populaire dans le sud-ouest.",
    ),
]
QUESTIONS = [
    ("Quelle est la croissance moyenne de l'Ouganda dans les années 1990 ?", "p-0", ["6,5 %"]),
    ("Qui fut vice-présidente du Parlement de 1994 à 2003 ?", "p-1", ["Specioza Kazibwe"]),
    ("Combien de salariés compte le secteur sportif ?", "p-2", ["100 000"]),
    ("Quel sport est le plus pratiqué en France ?", "p-3", ["le football"]),
]


@pytest.fixture
def piaf(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"id": i, "title": t, "text": x}) for i, t, x in PARAGRAPHS),
        encoding="utf-8",
    )
    questions = tmp_path / "dev_questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps({"id": str(n), "question": q, "paragraph_id": p, "answers": a})
            for n, (q, p, a) in enumerate(QUESTIONS)
        ),
        encoding="utf-8",
    )
    return corpus, questions


def first_sentence(call: GatewayCall) -> str:
    """A faithful model: the first sentence of the first passage, cited."""
    user = call.request.messages[-1].content
    match = re.search(r'<passage id="1">\n(?:Source : [^\n]*\n)?([^.]*\.)', user)
    if match is None:  # the restatement request
        return re.sub(r"</?phrase>", "", user).strip()
    return f"{match.group(1)} [1]"


def test_answers_are_compared_normalised() -> None:
    assert normalise("L’Ouganda, « perle »  de l'Afrique !") == "l ouganda perle de l afrique"
    assert contains_answer("Il y a 100 000 salariés.", ["100 000"])
    assert contains_answer("CROISSANCE DE 6,5 %", ["6,5 %"])
    assert not contains_answer("Il y a 1000 salariés.", ["100"])


def test_generation_and_support_reports(piaf: tuple[Path, Path]) -> None:
    corpus, questions = piaf
    items = load_qa(questions)
    assert [item.index for item in items] == [0, 1, 2, 3] and items[1].answers == (
        "Specioza Kazibwe",
    )
    index = EvaluationIndex(corpus, None, RetrievalSettings(), None)
    gateway = ScriptedGateway(first_sentence)
    answerer = GroundedAnswerer(gateway, ExtractiveAnswerer(abstain_below=0.0))
    report = evaluate_generation(index, items, answerer, model=None, mode=RetrievalMode.LEXICAL)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["n"] == 4 and summary["abstention_share"] == 0.0
    assert summary["generated_share"] == 1.0 and summary["gold_in_generated"] >= 0.5
    assert summary["gold_passage_given"] == 1.0 and summary["errors"] == 0
    labelled = build_support_set(
        index, corpus, items, answerer, model=None, mode=RetrievalMode.LEXICAL
    )
    kinds = {item.kind for item in labelled}
    assert {"gold_sentence", "other_paragraph", "model_answer", "paraphrase"} <= kinds
    assert {"number_changed", "answer_elsewhere"} <= kinds
    assert all(
        item.supported == (item.kind in ("gold_sentence", "paraphrase", "model_answer"))
        for item in labelled
    )
    support = evaluate_support(labelled, SupportChecker())
    lexical = support["lexical"]
    assert isinstance(lexical, dict)
    held = lexical["held_out_odd"]
    assert held["catch_rate"] == 1.0 and held["false_flag_rate"] == 0.0
    assert set(support["variants_odd"]) >= {"default", "plain_coverage"}  # type: ignore[call-overload]


def test_a_labelled_set_round_trips(tmp_path: Path) -> None:
    labelled = [
        LabelledSentence(3, "paraphrase", "Une phrase.", ("Une phrase.",), ("T",), "Q ?", True)
    ]
    save_labelled(labelled, tmp_path / "labelled.jsonl")
    assert load_labelled(tmp_path / "labelled.jsonl") == labelled
