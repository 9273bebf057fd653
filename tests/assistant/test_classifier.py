"""Intent classification and out-of-scope detection on synthetic data (fake embedder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from allo.assistant.nlu import (
    OOS,
    Example,
    IntentClassifier,
    MessageUnderstanding,
    TfidfSvmBaseline,
    score,
)
from allo.assistant.nlu.neighbours import Centring, NearestExamples
from allo.config import EmbedderKind, Settings
from allo.errors import InvalidInputError
from allo.testing.embedders import FakeEmbedder

TOPICS = {
    "facture": ["facture", "montant", "prélèvement", "payer", "euros", "tarif"],
    "wifi": ["wifi", "réseau", "lent", "débit", "signal", "connexion"],
    "sim": ["carte", "sim", "code", "pin", "puk", "bloquée"],
    "conseiller": ["conseiller", "humain", "agent", "personne", "parler", "appeler"],
}
OTHER = ["recette", "gâteau", "football", "météo", "vacances", "chanson", "jardin", "piscine"]


def make_examples(seed: int, per_intent: int = 14) -> list[Example]:
    rng = np.random.default_rng(seed)
    examples = []
    for intent, words in TOPICS.items():
        for _ in range(per_intent):
            picked = rng.choice(words, size=3, replace=False)
            examples.append(Example("mon " + " ".join(picked), intent))
    for _ in range(per_intent):
        examples.append(Example("le " + " ".join(rng.choice(OTHER, size=3, replace=False)), OOS))
    return examples


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> IntentClassifier:
    cache = tmp_path_factory.mktemp("cache")
    return IntentClassifier(FakeEmbedder(), cache_dir=cache).fit(make_examples(0))


def test_learns_the_intents(trained: IntentClassifier) -> None:
    test = [e for e in make_examples(1, per_intent=6)]
    predicted = trained.predict_labels([e.text for e in test])
    scores = score([e.intent for e in test], predicted)
    assert scores["accuracy"] >= 0.9
    assert scores["oos_recall"] >= 0.8
    assert trained.intents == sorted(TOPICS)


def test_prediction_ranking_and_scope(trained: IntentClassifier) -> None:
    [prediction] = trained.predict(["ma facture montant en euros"], top=2)
    assert prediction.intent == "facture" and prediction.in_scope
    assert prediction.ranking[0][0] == "facture" and len(prediction.ranking) == 2
    assert trained.predict([]) == []


def test_unrelated_messages_are_out_of_scope(trained: IntentClassifier) -> None:
    predictions = trained.predict(["le football à la piscine", "la météo des vacances"])
    assert [p.intent for p in predictions] == [OOS, OOS]
    assert not predictions[0].in_scope


def test_auto_threshold_without_oos_examples_rejects_nothing(tmp_path: Path) -> None:
    examples = [e for e in make_examples(0) if e.intent != OOS]
    classifier = IntentClassifier(FakeEmbedder(), cache_dir=tmp_path).fit(examples)
    assert classifier.threshold == -np.inf
    assert OOS not in classifier.predict_labels([e.text for e in make_examples(2)])


def test_explicit_threshold_rejects_everything_below_it(tmp_path: Path) -> None:
    classifier = IntentClassifier(FakeEmbedder(), oos_threshold=1e9).fit(make_examples(0))
    assert set(classifier.predict_labels(["ma facture", "mon wifi lent"])) == {OOS}


def test_embeddings_are_cached_by_content(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    examples = make_examples(0)
    IntentClassifier(embedder, cache_dir=tmp_path, lexical_weight=0).fit(examples)
    first = embedder.embedded_texts
    assert first == len({e.text for e in examples})
    assert len(list(tmp_path.rglob("*.npy"))) == first
    again = IntentClassifier(embedder, cache_dir=tmp_path, lexical_weight=0).fit(examples)
    assert embedder.embedded_texts == first  # nothing re-embedded
    assert again.embeddings.hits == first
    # a corrupt cache file is recomputed, not trusted
    next(tmp_path.rglob("*.npy")).write_bytes(b"garbage")
    IntentClassifier(embedder, cache_dir=tmp_path, lexical_weight=0).fit(examples)
    assert embedder.embedded_texts == first + 1


def test_customer_messages_are_not_cached(trained: IntentClassifier) -> None:
    assert trained.embeddings.cache_dir is not None
    before = len(list(trained.embeddings.cache_dir.rglob("*.npy")))
    trained.predict(["mon numéro secret 0612345678"])
    assert len(list(trained.embeddings.cache_dir.rglob("*.npy"))) == before


def test_bad_training_data_and_settings() -> None:
    with pytest.raises(InvalidInputError, match="at least 2 intents"):
        IntentClassifier(FakeEmbedder()).fit([Example("a", "x"), Example("b", OOS)])
    with pytest.raises(ValueError, match="c must be"):
        IntentClassifier(FakeEmbedder(), c=0)
    with pytest.raises(RuntimeError, match="fit"):
        IntentClassifier(FakeEmbedder()).predict(["a"])


def test_two_intents_without_oos(tmp_path: Path) -> None:
    examples = [e for e in make_examples(0) if e.intent in {"facture", "wifi"}]
    classifier = IntentClassifier(FakeEmbedder()).fit(examples)
    assert classifier.predict_labels(["ma facture en euros", "wifi lent"]) == ["facture", "wifi"]


def test_without_an_embedder_ngrams_alone_do_the_work(tmp_path: Path) -> None:
    classifier = IntentClassifier(None, cache_dir=tmp_path).fit(make_examples(0))
    assert classifier.embeddings is None and classifier.name == "tfidf-linearsvc+oos-threshold"
    test = make_examples(1, per_intent=6)
    scores = score([e.intent for e in test], classifier.predict_labels([e.text for e in test]))
    assert scores["accuracy"] >= 0.9 and scores["oos_recall"] >= 0.8
    assert not classifier.confidence.neighbours  # no embeddings, no nearest examples
    assert not list(tmp_path.iterdir())  # nothing embedded, nothing cached
    classifier.warm_up()  # nothing to load, no error
    with pytest.raises(ValueError, match="lexical_weight"):
        IntentClassifier(None, lexical_weight=0)


def test_calibration_uses_the_nearest_examples(trained: IntentClassifier) -> None:
    confidence = trained.confidence
    assert confidence.neighbours and confidence.similarity_scale > 0
    # a standardised sum: the out-of-fold mean of each signal maps to 0
    values = confidence(np.array([confidence.svm_mean]), np.array([confidence.similarity_mean]))
    assert values[0] == pytest.approx(0.0)


def test_centring_and_nearest_examples() -> None:
    vectors = np.array([[1.0, 0.0], [0.8, 0.2], [1.0, 0.4]], dtype=np.float32)
    centring = Centring().fit(vectors)
    centred = centring.transform(vectors)
    assert np.allclose(np.linalg.norm(centred, axis=1), 1.0)
    assert centred[0] @ centred[1] < 0 < vectors[0] @ vectors[1]  # the shared part is gone
    nearest = NearestExamples(batch=2).fit(centred, ["a", "b", "a"])
    sims = nearest.by_intent(centred, ["a", "c", "b"])
    assert sims.shape == (3, 3)
    assert sims[0, 0] == pytest.approx(1.0) and (sims[:, 1] == -1.0).all()  # "c": no example
    assert sims[1, 0] == pytest.approx(max(centred[1] @ centred[0], centred[1] @ centred[2]))
    assert sims[1, 2] == pytest.approx(1.0) and sims[0, 2] == pytest.approx(centred[0] @ centred[1])
    with pytest.raises(RuntimeError):
        Centring().transform(vectors)
    with pytest.raises(ValueError, match="labels"):
        NearestExamples().fit(centred, ["a"])


def test_server_assistant_without_embedder(tmp_path: Path) -> None:
    from allo.assistant.session import build_assistant
    from allo.knowledge.service import KnowledgeBase

    knowledge = KnowledgeBase(Settings(data_dir=tmp_path, embedder=EmbedderKind.NONE))
    assistant = build_assistant(knowledge)
    try:
        classifier = assistant.policy.understander.classifier
        assert classifier.embeddings is None
        assert classifier.predict_labels(["ma facture est trop élevée ce mois-ci"]) != ["oos"]
    finally:
        assistant.close()
        knowledge.close()


def test_baseline_peer() -> None:
    baseline = TfidfSvmBaseline().fit(make_examples(0))
    test = make_examples(1, per_intent=6)
    scores = score([e.intent for e in test], baseline.predict_labels([e.text for e in test]))
    assert scores["accuracy"] >= 0.9


def test_message_understanding(trained: IntentClassifier) -> None:
    nlu = MessageUnderstanding(trained)
    result = nlu.understand("mon montant de facture : 39,99 € à payer, client C-12345678")
    assert result.language == "fr"
    assert result.intent == "facture"
    assert result.entity("amount") is not None and result.entity("amount").value == "39.99"  # type: ignore[union-attr]
    assert result.entity("customer_id") is not None
    assert nlu.understand("I would like to speak to someone about my bill").language == "en"


def test_score_definitions() -> None:
    truth = ["a", "a", "b", OOS, OOS]
    predicted = ["a", OOS, "b", OOS, "a"]
    scores = score(truth, predicted)
    assert scores["accuracy"] == round(2 / 3, 4)  # the oos prediction of an "a" is wrong
    assert scores["oos_recall"] == 0.5
    assert scores["oos_precision"] == 0.5
    assert scores["n"] == 5
    assert score(["a"], ["a"])["oos_recall"] is None
    with pytest.raises(ValueError):
        score(["a"], [])
