"""The RBF-kernel term of the intent classifier, and how fit decides whether to use it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from allo.assistant.nlu import OOS, Example, IntentClassifier
from allo.assistant.nlu.classifier import _choose_kernel_weight, _Signals
from allo.assistant.nlu.kernel import KernelScores


def ring(seed: int, per_class: int) -> tuple[np.ndarray, list[str]]:
    """Two intents no hyperplane through the centre separates: each sits on two
    opposite sides (``a`` on the first axis, ``b`` on the second), so both have mean 0."""
    rng = np.random.default_rng(seed)
    vectors, labels = [], []
    for label, axis in (("a", 0), ("b", 1)):
        for i in range(per_class):
            v = rng.normal(0, 0.15, 8)
            v[axis] += 1.0 if i % 2 else -1.0
            vectors.append(v / np.linalg.norm(v))
            labels.append(label)
    return np.asarray(vectors, dtype=np.float32), labels


class TableEmbedder:
    """Looks each text up in a table: lets a test place messages in embedding space."""

    name = "table"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.dim = len(next(iter(table.values())))

    def warm_up(self) -> None:
        """Nothing to load."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.table[text] for text in texts]).astype(np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_queries(texts)


def test_kernel_scores_separate_what_a_hyperplane_cannot() -> None:
    train, labels = ring(0, 40)
    test, truth = ring(1, 20)
    kernel = KernelScores().fit(train, labels)
    scores = kernel.scores(test, ["a", "b"])
    assert np.mean(np.asarray(["a", "b"])[scores.argmax(axis=1)] == np.asarray(truth)) >= 0.95
    assert 0 < kernel.support_vectors <= len(train)


def test_kernel_scores_are_standardised_per_row_and_aligned_to_the_classes() -> None:
    train, labels = ring(0, 30)
    train = np.vstack([train, np.tile(np.eye(8, dtype=np.float32)[2], (10, 1))])
    labels = labels + ["c"] * 10
    kernel = KernelScores().fit(train, labels)
    scores = kernel.scores(train[:5], ["c", "a", "b"])
    assert np.allclose(scores.mean(axis=1), 0, atol=1e-9)
    assert np.allclose(scores.std(axis=1), 1)
    reordered = kernel.scores(train[:5], ["b", "unknown", "a", "c"])
    assert np.allclose(reordered[:, [3, 2, 0]], scores)
    assert np.all(reordered[:, 1] == 0)  # a class the kernel never saw adds nothing


@pytest.mark.parametrize("classes", [2, 3, 6])
def test_kernel_scores_are_sklearns_decision_values_standardised(classes: int) -> None:
    rng = np.random.default_rng(classes)
    centres = rng.normal(size=(classes, 8))
    labels = [f"intent{i % classes}" for i in range(30 * classes)]
    vectors = centres[[i % classes for i in range(len(labels))]] + rng.normal(
        0, 0.8, (len(labels), 8)
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kernel = KernelScores().fit(vectors.astype(np.float32), labels)
    test = (vectors[:40] + rng.normal(0, 0.3, (40, 8))).astype(np.float32)
    reference = kernel._svm.decision_function(test)
    if reference.ndim == 1:  # sklearn's one value for two classes, positive: the second
        assert np.array_equal(
            kernel.scores(test, sorted(set(labels))).argmax(axis=1) == 1, reference > 0
        )
        return
    standard = (reference - reference.mean(axis=1, keepdims=True)) / reference.std(
        axis=1, keepdims=True
    )
    assert np.allclose(kernel.scores(test, sorted(set(labels))), standard, atol=1e-9)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: KernelScores(c=0), "c must be > 0"),
        (lambda: KernelScores(gamma=-1), "gamma must be > 0"),
        (
            lambda: KernelScores().fit(np.eye(3, dtype=np.float32), ["a", "b"]),
            "3 vectors but 2 labels",
        ),
        (
            lambda: KernelScores().fit(np.eye(3, dtype=np.float32), ["a", "a", "a"]),
            "at least 2 labels",
        ),
        (lambda: KernelScores().scores(np.eye(3, dtype=np.float32), ["a"]), "call fit"),
    ],
)
def test_kernel_scores_bad_use_is_named(make: object, message: str) -> None:
    with pytest.raises((ValueError, RuntimeError), match=message):
        make()  # type: ignore[operator]


def signals(kernel: np.ndarray) -> _Signals:
    svm = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    return _Signals(["a", "b"], svm, np.zeros_like(svm), kernel)


def test_the_kernel_is_used_only_when_it_ranks_better_out_of_fold() -> None:
    truth = np.asarray(["a", "b", "b"])  # the SVM alone gets the second example wrong
    helps = np.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]])
    assert _choose_kernel_weight(signals(helps), truth, 1.0) == 2.0
    harms = np.array([[-1.0, 1.0], [1.0, -1.0], [1.0, -1.0]])
    assert _choose_kernel_weight(signals(harms), truth, 1.0) == 0.0
    neutral = np.zeros((3, 2))
    assert _choose_kernel_weight(signals(neutral), truth, 1.0) == 0.0  # ties: no kernel


def classifier_examples(seed: int, per_class: int) -> tuple[list[Example], dict[str, np.ndarray]]:
    vectors, labels = ring(seed, per_class)
    texts = [f"message {seed}-{i}" for i in range(len(labels))]
    examples = [Example(t, label) for t, label in zip(texts, labels, strict=True)]
    return examples, dict(zip(texts, vectors, strict=True))


def test_fit_turns_the_kernel_on_where_it_helps() -> None:
    train, table = classifier_examples(0, 40)
    test, test_table = classifier_examples(1, 20)
    embedder = TableEmbedder(table | test_table)
    texts, truth = [e.text for e in test], [e.intent for e in test]

    auto = IntentClassifier(embedder, lexical_weight=0.0).fit(train)
    assert auto.kernel_weight == 2.0
    assert np.mean(np.asarray(auto.predict_labels(texts)) == np.asarray(truth)) >= 0.9

    linear = IntentClassifier(embedder, lexical_weight=0.0, kernel_weight=0).fit(train)
    assert linear.kernel_weight == 0.0
    assert linear.name == "e5-linearsvc+nn"
    linear_right = np.mean(np.asarray(linear.predict_labels(texts)) == np.asarray(truth))
    assert linear_right < 0.9  # without the kernel, only the nearest-example term helps


def test_fit_leaves_the_kernel_off_without_embeddings_and_with_few_examples() -> None:
    few = [Example(f"facture {i}", "facture") for i in range(3)]
    few += [Example(f"wifi {i}", "wifi") for i in range(3)] + [Example("météo", OOS)]
    assert IntentClassifier(None).fit(few).kernel_weight == 0.0
    one = [*few, Example("carte sim", "sim")]  # an intent with one example: no folds
    train, table = classifier_examples(0, 10)
    embedder = TableEmbedder(table | {e.text: np.eye(8)[5] for e in one})
    assert IntentClassifier(embedder).fit(train + one).kernel_weight == 0.0


@pytest.mark.parametrize("weight", [-1.0, "always"])
def test_kernel_weight_must_be_auto_or_a_positive_number(weight: object) -> None:
    with pytest.raises(ValueError, match="kernel_weight must be 'auto' or a number >= 0"):
        IntentClassifier(None, kernel_weight=weight)  # type: ignore[arg-type]
