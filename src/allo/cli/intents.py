"""``allo eval intents``: intent classification and out-of-scope detection, scored.

Scores (see ``allo.assistant.nlu.evaluation``): ``accuracy`` is the in-scope accuracy of
the CLINC150 paper, correct intent over test examples whose true intent is not ``oos``
(an ``oos`` prediction counts wrong); ``oos_recall`` and ``oos_precision`` are about the
``oos`` label; ``macro_f1`` averages per-intent F1 over the test labels, ``oos`` included.
``train_seconds`` is the wall time of one training (embedding lookups through the cache,
the classifier, the out-of-scope calibration); with ``--cv`` it is the mean over folds.
``kernel_weights`` lists the weight of the kernel ridge term each training chose (0: off).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from allo.cli.common import console, handle_errors, settings

Files = Annotated[
    list[Path],
    typer.Option(
        "--train", exists=True, dir_okay=False, help="Examples (.jsonl, .csv, .yaml); repeatable."
    ),
]
TestFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--test", exists=True, dir_okay=False, help="Test examples; repeatable. Or use --cv."
    ),
]


def intents(
    train: Files,
    test: TestFiles = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also score TF-IDF + linear SVM, same run.")
    ] = False,
    cv: Annotated[
        int | None,
        typer.Option("--cv", min=2, max=20, help="K-fold cross-validation on --train instead."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train on --train, score on --test (or --cv K folds): accuracy, macro-F1, out-of-scope."""
    from allo.assistant.nlu.examples import load_examples
    from allo.errors import InvalidInputError

    with handle_errors():
        if (test is None) == (cv is None):
            raise InvalidInputError("give either --test FILE (repeatable) or --cv K, not both")
        train_examples = load_examples(train)
        test_examples = load_examples(test) if test else None
        with Progress(console=console, disable=as_json, transient=True) as progress:
            result = _evaluate(train_examples, test_examples, cv, baseline, progress)
    if as_json:
        print(json.dumps(result))
        return
    for name, metrics in [("allo", result)] + (
        [("baseline", result["baseline"])] if baseline else []
    ):
        shown = {k: v for k, v in metrics.items() if k != "baseline"}
        console.print(f"[bold]{name}[/bold] " + "  ".join(f"{k}={v}" for k, v in shown.items()))


def _evaluate(
    train: list[Any], test: list[Any] | None, cv: int | None, baseline: bool, progress: Progress
) -> dict[str, Any]:
    from allo.assistant.nlu.baseline import TfidfSvmBaseline
    from allo.assistant.nlu.classifier import IntentClassifier
    from allo.assistant.nlu.evaluation import score
    from allo.knowledge.index.embedding import make_embedder

    config = settings()
    embedder = make_embedder(config.embedder, config.cache_dir)
    cache = config.cache_dir / "intent-embeddings"
    classifier = IntentClassifier(embedder, cache_dir=cache)
    splits = _splits(train, test, cv)
    if classifier.embeddings is not None:  # ALLO_EMBEDDER=none: TF-IDF features only
        texts = {e.text for e in train} | {e.text for e in test or []}
        task = progress.add_task("Embedding", total=len(texts))
        classifier.embeddings.embed(sorted(texts), lambda n: progress.advance(task, n))
        progress.remove_task(task)

    task = progress.add_task("Training", total=len(splits) * (2 if baseline else 1))
    truth: list[str] = []
    allo_labels: list[str] = []
    peer_labels: list[str] = []
    allo_seconds: list[float] = []
    peer_seconds: list[float] = []
    thresholds: list[float] = []
    kernel_weights: list[float] = []
    for fit_on, held in splits:
        classifier.fit(fit_on)
        allo_seconds.append(classifier.train_seconds)
        thresholds.append(classifier.threshold)
        kernel_weights.append(classifier.kernel_weight)
        allo_labels += classifier.predict_labels([e.text for e in held], use_cache=True)
        truth += [e.intent for e in held]
        progress.advance(task)
        if baseline:
            started = time.perf_counter()
            peer = TfidfSvmBaseline().fit(fit_on)
            peer_seconds.append(time.perf_counter() - started)
            peer_labels += peer.predict_labels([e.text for e in held])
            progress.advance(task)
    result: dict[str, Any] = {
        "model": classifier.name + (f" ({embedder.name})" if embedder is not None else ""),
        **score(truth, allo_labels),
        "train_seconds": round(sum(allo_seconds) / len(allo_seconds), 2),
        "oos_threshold": _mean_threshold(thresholds),
        "kernel_weights": kernel_weights,
        "folds": cv,
    }
    if baseline:
        result["baseline"] = {
            "model": TfidfSvmBaseline.name,
            **score(truth, peer_labels),
            "train_seconds": round(sum(peer_seconds) / len(peer_seconds), 2),
        }
    return result


def _mean_threshold(thresholds: list[float]) -> float | None:
    """Mean out-of-scope threshold over folds; ``None`` when there was none (no oos data)."""
    finite = [t for t in thresholds if math.isfinite(t)]
    return round(sum(finite) / len(finite), 4) if finite else None


def _splits(train: list[Any], test: list[Any] | None, cv: int | None) -> list[tuple[Any, Any]]:
    """(train, held-out) pairs: the test files, or stratified folds of the training data."""
    if test is not None:
        return [(train, test)]
    from sklearn.model_selection import StratifiedKFold

    from allo.errors import InvalidInputError

    assert cv is not None
    labels = [e.intent for e in train]
    smallest = min(labels.count(label) for label in set(labels))
    if smallest < cv:
        raise InvalidInputError(
            f"--cv {cv} needs at least {cv} examples of every intent; the smallest has "
            f"{smallest}: lower --cv or add examples"
        )
    splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=0)
    return [
        ([train[i] for i in fit], [train[i] for i in held])
        for fit, held in splitter.split(labels, labels)
    ]
