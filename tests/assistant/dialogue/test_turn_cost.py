"""What makes a chat turn cheaper must not change it.

A customer message is embedded once: the classifier's query vector travels with the
understanding to the knowledge base, which searches with it instead of embedding the
same text again. The classifier's TF-IDF blocks are computed without a FeatureUnion,
and the dialogue state is copied without ``dataclasses.asdict``.
"""

from __future__ import annotations

import dataclasses
import warnings
from datetime import date
from typing import Any

import numpy as np
import pytest

from allo.assistant.nlu import MessageUnderstanding
from allo.assistant.nlu.understanding import Understanding
from allo.assistant.policy import (
    CustomerMessage,
    Decision,
    DialoguePolicy,
    DialogueState,
    TextMessage,
    Understander,
)
from allo.domain import Answer
from allo.knowledge.index.embedding import QueryVector
from allo.knowledge.service import KnowledgeBase
from allo.testing.embedders import FakeEmbedder

#: messages written for these tests: knowledge questions, a tutorial request, small talk
MESSAGES = (
    "comment résilier mon abonnement ?",
    "combien coûte un appel vers l'étranger",
    "je veux installer ma nouvelle Livebox 6",
    "merci beaucoup",
    "ma facture a doublé ce mois-ci",
)


def _say(policy: DialoguePolicy, state: DialogueState, text: str) -> Decision:
    return policy.respond(state, CustomerMessage(text=text))


def _shown(decision: Decision) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (m.text, tuple(c.source for c in m.citations))
        for m in decision.messages
        if isinstance(m, TextMessage)
    ]


# -- the vector travels from the classifier to retrieval ---------------------------------


def test_the_understanding_carries_the_raw_query_vector(
    understander: MessageUnderstanding,
) -> None:
    for understood in understander.understand_many(list(MESSAGES)):
        vector = understood.query_vector
        assert vector is not None and vector.text == understood.text
        assert vector.matches(understood.text, FakeEmbedder())
        expected = FakeEmbedder().embed_queries([understood.text])[0]  # raw, not centred
        assert np.array_equal(vector.vector, expected)


def test_the_vector_takes_no_part_in_comparisons(understander: MessageUnderstanding) -> None:
    understood = understander.understand(MESSAGES[0])
    assert understood == dataclasses.replace(understood, query_vector=None)
    assert "query_vector" not in repr(understood)


def test_predicting_from_given_vectors_is_predicting(understander: MessageUnderstanding) -> None:
    classifier = understander.classifier
    texts = list(MESSAGES)
    assert classifier.predict(texts, vectors=classifier.query_vectors(texts)) == (
        classifier.predict(texts)
    )
    with pytest.raises(ValueError, match="query_vectors"):
        classifier.predict(texts, vectors=np.zeros((1, 64), dtype=np.float32))


def test_a_knowledge_question_is_embedded_once(
    policy: DialoguePolicy, demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder
) -> None:
    text = MESSAGES[0]
    before = demo_embedder.calls
    decision = _say(policy, DialogueState(), text)
    assert decision.action in ("answer", "abstain")  # the knowledge base was asked
    assert demo_embedder.calls == before  # retrieval reused the classifier's vector
    answer = demo_kb.ask(text, lang="fr")  # embeds the question itself
    assert demo_embedder.calls == before + 1
    assert _shown(decision) == [
        (answer.text, tuple(c.source for c in answer.citations)),
    ]


class _Spy:
    """The knowledge base, recording what it is asked and with which vector."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge
        self.asked: list[tuple[str, QueryVector | None]] = []

    def ask(
        self,
        question: str,
        mode: Any = None,
        lang: str | None = None,
        *,
        query_vector: QueryVector | None = None,
    ) -> Answer:
        self.asked.append((question, query_vector))
        return self.knowledge.ask(question, mode, lang, query_vector=query_vector)


def test_a_question_aside_is_embedded_once(
    policy: DialoguePolicy, demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder
) -> None:
    spy = _Spy(demo_kb)
    spied = DialoguePolicy(policy.understander, policy.tutorials, spy)
    started = _say(spied, DialogueState(), "Je veux installer ma nouvelle Livebox 6")
    before = demo_embedder.calls
    question = "Combien coûte la résiliation de mon abonnement ?"
    _say(spied, started.state, question)
    assert [text for text, _ in spy.asked] == [question]  # asked aside, mid-tutorial
    vector = spy.asked[0][1]
    assert vector is not None and vector.matches(question, demo_embedder)
    assert demo_embedder.calls == before


class _Forgetful:
    """An understander that drops the query vector: the knowledge base embeds again."""

    def __init__(self, inner: Understander) -> None:
        self.inner = inner

    def understand(self, text: str, today: date | None = None) -> Understanding:
        return dataclasses.replace(self.inner.understand(text, today), query_vector=None)


@pytest.mark.parametrize("text", MESSAGES)
def test_turns_are_the_same_with_or_without_the_vector(
    policy: DialoguePolicy, text: str, demo_embedder: FakeEmbedder
) -> None:
    without = DialoguePolicy(_Forgetful(policy.understander), policy.tutorials, policy.knowledge)
    with_vector = _say(policy, DialogueState(), text)
    before = demo_embedder.calls
    recomputed = _say(without, DialogueState(), text)
    if recomputed.action in ("answer", "abstain"):
        assert demo_embedder.calls == before + 1
    assert (with_vector.action, with_vector.intent, _shown(with_vector)) == (
        recomputed.action,
        recomputed.intent,
        _shown(recomputed),
    )
    assert with_vector.state == recomputed.state


# -- sklearn's warning about delayed ---------------------------------------------


def test_no_sklearn_parallel_warning_when_another_thread_reset_the_filters(
    understander: MessageUnderstanding,
) -> None:
    """A server thread inside ``warnings.catch_warnings`` may leave the global filters
    empty for a moment: a FeatureUnion would then warn about ``delayed`` on each message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        understander.understand("ma facture a doublé ce mois-ci")
    assert not [w for w in caught if "delayed" in str(w.message)]


# -- the dialogue state ------------------------------------------------------------------


def _rich_state() -> DialogueState:
    return DialogueState(
        tutorial={
            "tutorial_id": "installation_livebox",
            "step_id": "verifier_carton",
            "slots": {"box_model": "Livebox 6", "_tries": 2, "ratio": 0.5},
            "history": ["accueil", "verifier_carton"],
            "finished": False,
            "pair": (1, [2, 3]),
        },
        failures=1,
        irritation=1,
        first_request="je veux installer ma box",
        last_intent="installation_box",
        entities={"phone": "0184235678"},
        steps_done=["installation_livebox:accueil"],
        language="en",
        handed_off=True,
    )


def test_the_state_copy_is_what_asdict_gives() -> None:
    for state in (DialogueState(), _rich_state()):
        copied = state.to_dict()
        assert copied == dataclasses.asdict(state)
        assert DialogueState.from_dict(copied) == state


def test_the_state_copy_shares_nothing_mutable() -> None:
    state = _rich_state()
    copied = state.to_dict()
    copied["tutorial"]["slots"]["box_model"] = "autre"
    copied["tutorial"]["history"].append("x")
    copied["tutorial"]["pair"][1].append(4)
    copied["entities"]["phone"] = "0"
    copied["steps_done"].clear()
    assert state == _rich_state()


def test_a_passed_vector_must_be_one_row() -> None:
    with pytest.raises(ValueError, match="one dimension"):
        QueryVector("bonjour", "fake-hashing-64", np.zeros((1, 64), dtype=np.float32))
    source = np.ones(64, dtype=np.float32)
    vector = QueryVector("bonjour", "fake-hashing-64", source)
    source[0] = 5.0
    assert vector.vector[0] == 1.0  # a copy
    with pytest.raises(ValueError):
        vector.vector[0] = 2.0  # read-only
