"""Multi-label metrics, all computed by scikit-learn.

`jaccard` is the SemEval-2018 E-c official score: the mean over examples of
|pred & gold| / |pred | gold|, where an empty prediction for an empty gold set counts as 1.

A score that is undefined (precision of a label never predicted, recall or ROC-AUC of a label
with no positives in the split) is reported as None (null in JSON) with a warning, never as 0;
macro averages leave such labels out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .params import HEADLINE_MEAN, HEADLINE_METRICS

MAX_CURVE_POINTS = 200
# What each report shows: the trainer's per-epoch validation scores, the plain-0.5 rule beside
# the tuned one in metrics.json, and the model card's columns.
EPOCH_METRICS = (*HEADLINE_METRICS, "accuracy", "roc_auc_micro")
AT_HALF_METRICS = ("f1_micro", "f1_macro", "jaccard", "accuracy")
CARD_METRICS = ("f1_micro", "f1_macro", "jaccard", "accuracy", "roc_auc_micro", "roc_auc_macro")

__all__ = ["HEADLINE_MEAN", "HEADLINE_METRICS", "format_score", "headline_mean", "multilabel_metrics"]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, computed in float64 (float32 overflows at |logit| > 88)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def headline_mean(scores: dict[str, float | None]) -> float:
    """The mean of Jaccard, micro-F1 and macro-F1 in `scores`; an undefined one (None) counts 0,
    so the mean exists for every epoch and every candidate threshold."""
    return float(np.mean([scores[key] or 0.0 for key in HEADLINE_METRICS]))


def format_score(value: float | None) -> str:
    """A score for a table or a summary line: four decimals, or n/a where it is undefined."""
    return "n/a" if value is None else f"{value:.4f}"


def apply_threshold(probabilities: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """0/1 predictions: a label is on when its probability is at least `threshold` (one value,
    one per label, or one per cell)."""
    return (np.asarray(probabilities) >= np.asarray(threshold)).astype(np.int8)


def multilabel_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, threshold: float | np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Every score the pipeline reports for one split, as a JSON-ready dict; `threshold` is one
    value or one per label."""
    # scikit-learn is imported here, not at the top: `predict` loads this module for `sigmoid`
    # and should not pay a second of start-up for metrics it never computes.
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_recall_fscore_support

    y_true = np.asarray(y_true).astype(np.int8)
    y_pred = apply_threshold(probabilities, threshold)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=np.nan
    )
    undefined = [name for i, name in enumerate(label_names) if np.isnan([precision[i], recall[i]]).any()]
    if undefined:
        warnings.warn(
            f"precision or recall is undefined (reported as null) for: {', '.join(undefined)}; "
            "a label that is never predicted has no precision, one with no positives no recall",
            stacklevel=2,
        )
    roc_auc_micro, roc_auc_macro = roc_auc_scores(y_true, probabilities)
    return {
        "n_examples": len(y_true),
        "f1_micro": _score(f1_score(y_true, y_pred, average="micro", zero_division=np.nan)),
        "f1_macro": _score(f1_score(y_true, y_pred, average="macro", zero_division=np.nan)),
        "roc_auc_micro": roc_auc_micro,
        "roc_auc_macro": roc_auc_macro,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "jaccard": float(jaccard_score(y_true, y_pred, average="samples", zero_division=1.0)),
        "per_label": {
            name: {
                "precision": _score(precision[i]),
                "recall": _score(recall[i]),
                "f1": _score(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
    }


def _score(value: float) -> float | None:
    """A float for JSON, or None where scikit-learn says the score is undefined (NaN)."""
    return None if np.isnan(value) else float(value)


def roc_auc_scores(y_true: np.ndarray, probabilities: np.ndarray) -> tuple[float | None, float | None]:
    """(micro, macro) ROC-AUC on probabilities; macro averages the labels where AUC is defined.

    A label whose column is all 0 or all 1 has no ROC-AUC; it is left out of the macro average
    (with a warning) instead of crashing the evaluation. None when nothing is defined.
    """
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    defined = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
    if len(defined) < y_true.shape[1]:
        warnings.warn(
            f"ROC-AUC is undefined for {y_true.shape[1] - len(defined)} label(s) whose gold column "
            "holds one class only; they are left out of roc_auc_macro",
            stacklevel=2,
        )
    macro = (
        float(np.mean([roc_auc_score(y_true[:, j], probabilities[:, j]) for j in defined]))
        if defined
        else None
    )
    flat = y_true.ravel()
    micro = float(roc_auc_score(flat, probabilities.ravel())) if 0 < flat.sum() < len(flat) else None
    return micro, macro


def precision_recall_points(
    y_true: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str]
) -> dict[str, list[dict[str, float]]]:
    """Per-label precision-recall curves, thinned to at most MAX_CURVE_POINTS points each."""
    from sklearn.metrics import precision_recall_curve

    curves = {}
    for j, name in enumerate(label_names):
        if not np.asarray(y_true)[:, j].any():
            continue
        precision, recall, thresholds = precision_recall_curve(y_true[:, j], probabilities[:, j])
        keep = np.unique(np.linspace(0, len(thresholds) - 1, MAX_CURVE_POINTS).round().astype(int))
        curves[name] = [
            {
                "threshold": round(float(thresholds[k]), 4),
                "precision": round(float(precision[k]), 4),
                "recall": round(float(recall[k]), 4),
            }
            for k in keep
        ]
    return curves
