"""The kernel ridge term of the intent classifier, and how fit decides whether to use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from allo.assistant.nlu import OOS, Example, IntentClassifier
from allo.assistant.nlu.classifier import _choose_kernel_weight, _Signals
from allo.assistant.nlu.kernel import KernelRidgeScores


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
    kernel = KernelRidgeScores().fit(train, None, labels)
    scores = kernel.scores(test, None, ["a", "b"])
    assert np.mean(np.asarray(["a", "b"])[scores.argmax(axis=1)] == np.asarray(truth)) >= 0.95
    assert kernel.classes == ["a", "b"]


def test_kernel_scores_are_standardised_per_row_and_aligned_to_the_classes() -> None:
    train, labels = ring(0, 30)
    train = np.vstack([train, np.tile(np.eye(8, dtype=np.float32)[2], (10, 1))])
    labels = labels + ["c"] * 10
    kernel = KernelRidgeScores().fit(train, None, labels)
    scores = kernel.scores(train[:5], None, ["c", "a", "b"])
    assert np.allclose(scores.mean(axis=1), 0, atol=1e-9)
    assert np.allclose(scores.std(axis=1), 1)
    reordered = kernel.scores(train[:5], None, ["b", "unknown", "a", "c"])
    assert np.allclose(reordered[:, [3, 2, 0]], scores)
    assert np.all(reordered[:, 1] == 0)  # a class the kernel never saw adds nothing


def ngram_rows(texts: Sequence[str]) -> object:
    """Unit-norm TF-IDF rows of the texts, the kind the classifier hands the kernel."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit_transform(texts)


@pytest.mark.parametrize("lexical_weight", [0.0, 0.25, 1.0])
def test_kernel_scores_are_a_kernel_ridge_regression_standardised(lexical_weight: float) -> None:
    """Same numbers as sklearn's ``KernelRidge`` on the summed kernel (to float32 rounding)."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.metrics.pairwise import rbf_kernel

    rng = np.random.default_rng(3)
    classes = ["x", "y", "z"]
    labels = [classes[i % 3] for i in range(60)]
    vectors = rng.normal(size=(60, 8)) + 2.0 * np.eye(8)[[i % 3 for i in range(60)]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ["facture", "wifi", "livebox", "forfait", "roaming", "sim"]
    texts = [" ".join(rng.choice(words, 3)) + f" {label}" for label in labels]
    rows: Any = ngram_rows(texts)
    train, test = slice(0, 45), slice(45, 60)
    model = KernelRidgeScores(gamma=0.5, lexical_weight=lexical_weight, ridge=0.3, block=7)
    model.fit(vectors[train].astype(np.float32), rows[train], labels[train])
    got = model.scores(vectors[test].astype(np.float32), rows[test], classes)

    def gram(a: slice, b: slice) -> np.ndarray:
        lexical = (rows[a] @ rows[b].T).toarray()
        return rbf_kernel(vectors[a], vectors[b], gamma=0.5) + lexical_weight * lexical

    onehot = (np.asarray(labels[train])[:, None] == np.asarray(classes)[None, :]).astype(float)
    reference = KernelRidge(alpha=0.3, kernel="precomputed").fit(gram(train, train), onehot)
    raw = reference.predict(gram(test, train))
    standard = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)
    assert np.allclose(got, standard, atol=1e-5)  # prediction runs in float32


def test_the_ngram_kernel_tells_apart_what_the_embeddings_confuse() -> None:
    """Same vector for every text: only the shared words can say which intent it is."""
    texts = [f"{word} {i}" for word in ("facture", "wifi") for i in range(10)]
    labels = ["bill"] * 10 + ["wifi"] * 10
    vectors = np.tile(np.eye(8, dtype=np.float32)[0], (20, 1))
    rows: Any = ngram_rows([*texts, "ma facture", "le wifi"])
    model = KernelRidgeScores(lexical_weight=1.0).fit(vectors, rows[:20], labels)
    scores = model.scores(vectors[:2], rows[20:], ["bill", "wifi"])
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1
    blind = (
        KernelRidgeScores().fit(vectors, None, labels).scores(vectors[:2], None, ["bill", "wifi"])
    )
    assert np.allclose(blind, blind[0])  # without n-grams both messages look the same


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: KernelRidgeScores(gamma=-1), "gamma must be > 0"),
        (lambda: KernelRidgeScores(ridge=0), "ridge must be > 0"),
        (lambda: KernelRidgeScores(lexical_weight=-0.5), "lexical_weight must be >= 0"),
        (lambda: KernelRidgeScores(block=0), "block must be >= 1"),
        (
            lambda: KernelRidgeScores().fit(np.eye(3, dtype=np.float32), None, ["a", "b"]),
            "3 vectors but 2 labels",
        ),
        (
            lambda: KernelRidgeScores().fit(np.eye(3, dtype=np.float32), None, ["a", "a", "a"]),
            "at least 2 labels",
        ),
        (
            lambda: KernelRidgeScores().fit(
                np.eye(3, dtype=np.float32), ngram_rows(["a b", "c d"]), ["a", "b", "a"]
            ),
            "2 n-gram rows but 3 labels",
        ),
        (
            lambda: (
                KernelRidgeScores()
                .fit(np.eye(3, dtype=np.float32), None, ["a", "b", "a"])
                .scores(np.eye(3, dtype=np.float32), ngram_rows(["a", "b", "c"]), ["a"])
            ),
            "give n-gram rows exactly when the model was fitted with them",
        ),
        (lambda: KernelRidgeScores().scores(np.eye(3, dtype=np.float32), None, ["a"]), "call fit"),
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
