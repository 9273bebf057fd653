"""Fit the abstention model (``allo.knowledge.answer``) on PIAF half A, check it on half B.

For every PIAF dev question, two cases go through the product's own search:

* *answerable*: the gold paragraph is indexed and ranked first (label 1);
* *unanswerable*: the gold paragraph is hidden, as if never indexed (label 0): its chunks
  leave the ranking and the coverage's document frequencies (see ``SearchIndex.search``).

A logistic model of the best passage's features is fitted on the even-numbered
questions (half A): ``dense_z`` and ``coverage`` for hybrid search, ``coverage`` alone
for the lexical-only model (no embedder). The threshold that balances wrong answers and
wrong abstentions on half A is reported, then both rates on half B (odd-numbered) at that
threshold and at the configured default, with the current coefficients for comparison.

    python benchmarks/fit_abstention.py [--corpus corpus.jsonl] [--questions dev.jsonl]
        [--unseen-weight 1.0]

``--unseen-weight`` refits with a question word the base never saw weighing less than
the rarest term in the coverage (the product uses 1.0: docs/retrieval.md).

It needs the e5 model (``ALLO_EMBEDDER``); embeddings are cached in the data folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.config import RetrievalMode, load_settings  # noqa: E402
from allo.evaluation.retrieval import EvaluationIndex, Question, load_questions  # noqa: E402
from allo.knowledge.answer import confidence_from_scores  # noqa: E402
from allo.knowledge.index.embedding import make_embedder  # noqa: E402
from allo.storage import open_store  # noqa: E402

PIAF = ROOT.parent / "shared" / "data" / "qa" / "piaf"
FEATURES = {RetrievalMode.HYBRID: ("dense_z", "coverage"), RetrievalMode.LEXICAL: ("coverage",)}
Array = npt.NDArray[np.float64]


def collect(
    index: EvaluationIndex, questions: list[Question], mode: RetrievalMode
) -> tuple[list[dict[str, float]], list[int], list[int]]:
    """Scores of the best passage per case, its label (1 answerable) and question number."""
    positions: dict[str, list[int]] = {}
    for position, external in enumerate(index.chunk_doc):
        positions.setdefault(external, []).append(position)
    vectors = index.query_vectors(questions)
    scores: list[dict[str, float]] = []
    labels: list[int] = []
    numbers: list[int] = []
    for number, question in enumerate(questions):
        vector = None if vectors is None else vectors[number]
        gold = frozenset(positions.get(question.gold, ()))
        for label, exclude in ((1, frozenset[int]()), (0, gold)):
            hits = index.index.search(question.text, vector, mode, 1, exclude)
            if not hits:
                continue
            if label == 1 and hits[0].position not in gold:
                continue  # the gold is not first: nothing to answer from
            scores.append(hits[0].scores)
            labels.append(label)
            numbers.append(number)
    return scores, labels, numbers


def rates(confidence: Array, labels: Array, threshold: float) -> dict[str, float]:
    """Wrong answers (unanswerable, yet confident) and wrong abstentions at ``threshold``."""
    return {
        "threshold": round(threshold, 3),
        "wrong_answer_rate": round(float(np.mean(confidence[labels == 0] >= threshold)), 4),
        "wrong_abstention_rate": round(float(np.mean(confidence[labels == 1] < threshold)), 4),
    }


def balance_threshold(confidence: Array, labels: Array) -> float:
    """The threshold (step 0.01) where wrong answers and wrong abstentions are closest."""
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    gaps = [
        abs(float(np.mean(confidence[labels == 0] >= t) - np.mean(confidence[labels == 1] < t)))
        for t in grid
    ]
    return float(grid[int(np.argmin(gaps))])


def fit(
    scores: list[dict[str, float]],
    labels: list[int],
    numbers: list[int],
    names: tuple[str, ...],
    default: float,
) -> dict[str, object]:
    """Fit on half A (even question numbers), evaluate on half B."""
    features = np.array([[row.get(name, 0.0) for name in names] for row in scores])
    target = np.array(labels)
    half_a = np.array([number % 2 == 0 for number in numbers])
    # A large C: no regularisation to speak of (two or three coefficients, ~1,800 cases).
    model = LogisticRegression(C=1e4, max_iter=1000).fit(features[half_a], target[half_a])
    fitted_a = model.predict_proba(features[half_a])[:, 1]
    fitted_b = model.predict_proba(features[~half_a])[:, 1]
    # only the model's own inputs: without dense_z, the lexical-only model answers
    inputs = [{name: row[name] for name in names if name in row} for row in scores]
    current = np.array([confidence_from_scores(row) for row in inputs])
    threshold = balance_threshold(fitted_a, target[half_a])
    return {
        "coefficients": {
            "bias": round(float(model.intercept_[0]), 3),
            **{name: round(float(w), 3) for name, w in zip(names, model.coef_[0], strict=True)},
        },
        "n_half_a": int(half_a.sum()),
        "n_half_b": int((~half_a).sum()),
        "balance_threshold_half_a": threshold,
        "half_b_at_balance": rates(fitted_b, target[~half_a], threshold),
        "half_b_at_default": rates(fitted_b, target[~half_a], default),
        "auc_half_b": round(float(roc_auc_score(target[~half_a], fitted_b)), 4),
        "half_a_at_default": rates(fitted_a, target[half_a], default),
        "current_model_half_a_at_default": rates(current[half_a], target[half_a], default),
        "current_model_half_b_at_default": rates(current[~half_a], target[~half_a], default),
        "current_model_auc_half_b": round(
            float(roc_auc_score(target[~half_a], current[~half_a])), 4
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=PIAF / "corpus.jsonl")
    parser.add_argument("--questions", type=Path, default=PIAF / "dev_questions.jsonl")
    parser.add_argument(
        "--unseen-weight",
        type=float,
        default=1.0,
        help="weight of a question word the base never saw, as a share of the rarest "
        "term's (1.0, the product's choice; lower values to compare)",
    )
    args = parser.parse_args()
    if not 0.0 <= args.unseen_weight <= 1.0:
        parser.error(f"--unseen-weight must be between 0 and 1 (got {args.unseen_weight})")
    for path in (args.corpus, args.questions):
        if not path.is_file():
            parser.error(f"{path} not found: pass --corpus and --questions (PIAF layout)")
    settings = load_settings()
    embedder = make_embedder(settings.embedder, settings.cache_dir)
    if embedder is None:
        parser.error("the hybrid model needs embeddings: set ALLO_EMBEDDER (e.g. onnx)")
    cache = open_store(f"sqlite:///{(settings.cache_dir / 'embeddings.db').resolve()}")
    index = EvaluationIndex(args.corpus, embedder, settings.retrieval, cache)
    index.index.lexical.unseen_weight = args.unseen_weight
    questions = load_questions(args.questions)
    default = settings.answer.abstain_below
    report = {
        mode.value: fit(*collect(index, questions, mode), names, default)
        for mode, names in FEATURES.items()
    }
    print(json.dumps({"unseen_weight": args.unseen_weight, **report}, indent=2))


if __name__ == "__main__":
    main()
