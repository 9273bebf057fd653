"""Scores of intent classifiers, as in the CLINC150 paper (Larson et al., 2019).

- ``accuracy``: in-scope accuracy, the fraction of test examples whose true intent is not
  ``oos`` that are predicted with exactly that intent (predicting ``oos`` counts wrong);
- ``oos_recall``: the fraction of ``oos`` test examples predicted ``oos``;
- ``oos_precision``: the fraction of ``oos`` predictions whose true intent is ``oos``
  (``null`` when nothing was predicted ``oos``);
- ``macro_f1``: the unweighted mean of per-intent F1 over every intent present in the
  test labels, ``oos`` included when present;
- ``n``: the number of test examples scored (in cross-validation, all folds together).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from allo.assistant.nlu.examples import OOS


def score(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro_f1, oos_recall, oos_precision and n of aligned label lists."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    pairs = list(zip(truth, predicted, strict=True))
    in_scope = [(t, p) for t, p in pairs if t != OOS]
    oos_true = [p for t, p in pairs if t == OOS]
    oos_predicted = [t for t, p in pairs if p == OOS]
    labels = sorted(set(truth))
    f1s = []
    for label in labels:
        tp = sum(1 for t, p in pairs if t == label and p == label)
        fp = sum(1 for t, p in pairs if t != label and p == label)
        fn = sum(1 for t, p in pairs if t == label and p != label)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)

    def ratio(num: int, den: int) -> float | None:
        return round(num / den, 4) if den else None

    return {
        "accuracy": ratio(sum(1 for t, p in in_scope if t == p), len(in_scope)),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "oos_recall": ratio(sum(1 for p in oos_true if p == OOS), len(oos_true)),
        "oos_precision": ratio(sum(1 for t in oos_predicted if t == OOS), len(oos_predicted)),
        "n": len(pairs),
    }
