"""Where a model's decisions go wrong, as small tables that `dvc plots show` draws and
`dvc plots diff` sets side by side across commits and experiments.

Every function takes gold and predicted 0/1 matrices (texts x labels) and returns JSON-ready rows.
A label set may be empty in multi-label data, so the confusion and the labels-per-text tables
give "(none)" its own row and column: a model that stays silent on texts that carry a label, or
speaks on texts that carry none, shows there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .metrics import apply_threshold

NONE = "(none)"
RELIABILITY_BINS = 10
CONFIDENT_ERROR_COLUMNS = ("id", "label", "error", "probability", "threshold", "gold", "predicted", "text")


def _with_none(matrix: np.ndarray) -> np.ndarray:
    """`matrix` with one more column that is 1 where a row has no label at all."""
    matrix = np.asarray(matrix, dtype=np.int64)
    return np.column_stack([matrix, matrix.sum(axis=1) == 0]).astype(np.int64)


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def label_confusion(gold: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """For each gold label g and predicted label p (and "(none)" on each side): of the texts whose
    gold set holds g, the share whose predicted set holds p. The diagonal is each label's recall;
    a bright cell off it is a label the model reaches for in place of, or beside, the gold one."""
    names = [*labels, NONE]
    gold_n, predicted_n = _with_none(gold), _with_none(predicted)
    counts = gold_n.T @ predicted_n  # counts[g, p]: texts with g in gold and p in the prediction
    per_gold = gold_n.sum(axis=0)
    return [
        {"gold": g, "predicted": p, "texts": int(counts[i, j]), "share": _share(int(counts[i, j]), int(per_gold[i]))}
        for i, g in enumerate(names)
        for j, p in enumerate(names)
    ]


def cooccurrence(matrix: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """For each ordered pair of different labels (a, b): of the texts that carry a, the share that
    also carry b. Drawn for the gold sets and for the predicted ones, the two heatmaps show which
    pairs the model joins more (or less) often than the annotators did."""
    matrix = np.asarray(matrix, dtype=np.int64)
    counts = matrix.T @ matrix
    return [
        {"label": a, "with": b, "texts": int(counts[i, j]), "share": _share(int(counts[i, j]), int(counts[i, i]))}
        for i, a in enumerate(labels)
        for j, b in enumerate(labels)
        if i != j
    ]


def labels_per_text(gold: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
    """How many texts carry 0, 1, 2, ... labels, in the gold sets and in the predictions (as shares
    of all texts), so a model that predicts too few or too many labels per text shows at a glance."""
    gold_sizes = np.asarray(gold).sum(axis=1).astype(int)
    predicted_sizes = np.asarray(predicted).sum(axis=1).astype(int)
    largest = int(max(gold_sizes.max(initial=0), predicted_sizes.max(initial=0)))
    rows = []
    for source, sizes in (("gold", gold_sizes), ("predicted", predicted_sizes)):
        counts = np.bincount(sizes, minlength=largest + 1)
        rows += [
            {"labels": str(k), "source": source, "texts": int(n), "share": _share(int(n), len(sizes))}
            for k, n in enumerate(counts)
        ]
    return rows


def reliability(gold: np.ndarray, probabilities: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """The reliability diagram over every (text, label) decision: per probability bin, the mean
    predicted probability against the share that were truly positive (scikit-learn's
    calibration_curve), with how many decisions fell in the bin. A calibrated model lies on the
    diagonal."""
    from sklearn.calibration import calibration_curve

    truth, scores = np.asarray(gold).ravel(), np.asarray(probabilities, dtype=np.float64).ravel()
    observed, predicted = calibration_curve(truth, scores, n_bins=bins, strategy="uniform")
    # calibration_curve drops empty bins; count each kept bin's decisions the same way it bins them
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.searchsorted(edges[1:-1], scores)
    filled = np.bincount(bin_of, minlength=bins)
    return [
        {"predicted_probability": round(float(p), 4), "observed_rate": round(float(o), 4), "decisions": int(n)}
        for p, o, n in zip(predicted, observed, filled[filled > 0])
    ]


def expected_calibration_error(rows: list[dict[str, Any]]) -> float:
    """The decision-weighted mean gap between predicted probability and observed rate over the
    reliability diagram's bins (0 for a perfectly calibrated model)."""
    total = sum(row["decisions"] for row in rows)
    gap = sum(row["decisions"] * abs(row["predicted_probability"] - row["observed_rate"]) for row in rows)
    return round(gap / total, 4) if total else 0.0


def plot_tables(
    gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, labels: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every error-analysis plot's rows for one split, by file name (the names dvc.yaml declares)."""
    predicted = apply_threshold(probabilities, thresholds)
    return {
        "confusion.json": label_confusion(gold, predicted, labels),
        "cooccurrence_gold.json": cooccurrence(gold, labels),
        "cooccurrence_predicted.json": cooccurrence(predicted, labels),
        "labels_per_text.json": labels_per_text(gold, predicted),
        "reliability.json": reliability(gold, probabilities),
    }


def confident_errors(
    ids: Sequence[Any],
    texts: Sequence[str],
    gold: np.ndarray,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    labels: Sequence[str],
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The `limit` wrong decisions made with the most confidence: a label predicted far above its
    threshold that the gold set lacks ("false positive"), or a gold label scored far below it
    ("missed"), most confident first. These rows quote texts: keep them out of git."""
    gold = np.asarray(gold, dtype=bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), probabilities.shape)
    predicted = probabilities >= thresholds
    wrong = np.argwhere(predicted != gold)
    margin = np.abs(probabilities - thresholds)[wrong[:, 0], wrong[:, 1]]
    order = np.argsort(-margin, kind="stable")[:limit]
    return [
        {
            "id": ids[row],
            "label": labels[col],
            "error": "false positive" if predicted[row, col] else "missed",
            "probability": round(float(probabilities[row, col]), 4),
            "threshold": round(float(thresholds[row, col]), 4),
            "gold": ";".join(label for label, on in zip(labels, gold[row]) if on),
            "predicted": ";".join(label for label, on in zip(labels, predicted[row]) if on),
            "text": texts[row],
        }
        for row, col in (wrong[k] for k in order)
    ]
