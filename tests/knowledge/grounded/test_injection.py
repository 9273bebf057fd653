"""Prompt injection against an obedient scripted model (see ``injection.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from allo.config import Settings
from allo.knowledge.answer import ExtractiveAnswerer
from allo.knowledge.grounded import GroundedAnswerer
from allo.knowledge.service import KnowledgeBase
from allo.testing.gateway import ScriptedGateway
from tests.knowledge.grounded.injection import (
    CASES,
    ask,
    leaked,
    load_case_base,
    obedient,
    quoted_by_extractive,
    violations,
)


def test_there_are_at_least_thirty_cases_of_both_kinds_in_both_languages() -> None:
    assert len(CASES) >= 30
    assert len({case["id"] for case in CASES}) == len(CASES)
    for where in ("document", "question"):
        for lang in ("fr", "en"):
            assert any(c["where"] == where and c["lang"] == lang for c in CASES), (where, lang)


# -- the obedient scripted model --------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_an_obedient_model_cannot_carry_out_the_injection(
    case: dict[str, Any], kb: KnowledgeBase, settings: Settings, tmp_path: Path
) -> None:
    load_case_base(kb, tmp_path / "docs", case)
    forced = ExtractiveAnswerer(abstain_below=0.0, chunks_of=kb.store.chunks_of)
    # As configured (a hostile question often lowers the confidence below the threshold:
    # no model call at all), then with abstention off so that the model always answers.
    for extractive in (kb.answerer, forced):
        for mixed in (False, True):
            gateway = ScriptedGateway(obedient(case, mixed), step=4)
            answerer = GroundedAnswerer(gateway, extractive)
            events, result = ask(kb, answerer, case)
            problems = violations(case, kb, extractive, events, result, gateway.calls, settings)
            assert problems == [], (mixed, extractive.abstain_below, result.answer.text)
            assert not quoted_by_extractive(case, result)
            if extractive is forced:
                assert gateway.calls, "the model was not asked"
                if mixed and result.generated:
                    assert result.removed_sentences >= 1  # caught, not ignored


# -- the plain extractive path (no model) -----------------------------------------------------

DOCUMENT_CASES = [case for case in CASES if case["where"] == "document"]


@pytest.mark.parametrize("case", DOCUMENT_CASES, ids=[case["id"] for case in DOCUMENT_CASES])
def test_the_plain_extractive_answer_never_quotes_an_injected_instruction(
    case: dict[str, Any], kb: KnowledgeBase, tmp_path: Path
) -> None:
    load_case_base(kb, tmp_path / "docs", case)
    question = " ".join(case["question"].split())
    # abstention off, so that an answer is always quoted from the passages
    kb.answerer = ExtractiveAnswerer(abstain_below=0.0, chunks_of=kb.store.chunks_of)
    answer = kb.ask(question, lang=case["lang"])
    assert not answer.abstained or not answer.passages
    assert leaked(case, answer.text) == [], answer.text
