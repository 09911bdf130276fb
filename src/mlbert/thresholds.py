"""Decision thresholds fitted on validation probabilities: one global value, then one per label.

A threshold per label lets a rare label (SemEval's surprise, trust) fire below 0.5, where its
calibrated probability rarely reaches. Fitting eleven thresholds on 886 tweets overfits the rare
ones, so each label's own optimum is shrunk toward the global threshold in proportion to how few
validation positives back it:

    t_label = (n_pos * t_own + shrinkage * t_global) / (n_pos + shrinkage)

Per-label optima are found by coordinate ascent on the chosen objective as a whole (Jaccard,
micro-F1, macro-F1, or `headline_mean`, the mean of the three), not label by label on each label's own
F1: the latter maximises macro-F1 but over-predicts and costs Jaccard and micro-F1.

The search scores a few thousand candidate rules, so the objective is computed here from counts
in numpy (the same definitions as sklearn's `f1_score` and `jaccard_score(average="samples")`,
which the tests check); the reported metrics stay sklearn's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import headline_mean
from .params import HEADLINE_MEAN, SELECTABLE_METRICS, EvaluateParams

OBJECTIVES = SELECTABLE_METRICS
# Candidate thresholds: every 0.01 from 0.02 to 0.98 (finer than validation can tell apart).
GRID = np.round(np.arange(0.02, 0.981, 0.01), 2)
COORDINATE_PASSES = 2


@dataclass(frozen=True)
class Thresholds:
    """The decision rule: label j is on when its probability is at least `per_label[j]`.

    `default` is the one threshold fitted for every label at once (and the fallback for a label
    the rule does not name); `unshrunk` holds each label's own optimum before shrinkage.
    """

    default: float
    per_label: np.ndarray
    objective: str | None = None
    unshrunk: np.ndarray | None = field(default=None, compare=False)

    @classmethod
    def fixed(cls, value: float, num_labels: int) -> Thresholds:
        return cls(float(value), np.full(num_labels, float(value)))

    def to_json(self, labels: Sequence[str]) -> dict:
        """What `thresholds.json` holds; `predict` and `load()` read it back."""
        return {
            "default": self.default,
            "objective": self.objective,
            "per_label": {label: round(float(t), 4) for label, t in zip(labels, self.per_label)},
        }


def objective_score(y_true: np.ndarray, y_pred: np.ndarray, objective: str) -> float:
    """The score a threshold search maximises: Jaccard over samples (a text with no gold and no
    predicted label scores 1), micro- or macro-F1 (an undefined label F1 counts 0), or
    `headline_mean`, the mean of those three."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown threshold objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    gold, predicted = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    scores = {}
    if objective in ("jaccard", HEADLINE_MEAN):
        both = (gold & predicted).sum(axis=1)
        either = (gold | predicted).sum(axis=1)
        scores["jaccard"] = float(np.mean(np.where(either > 0, both / np.maximum(either, 1), 1.0)))
    if objective != "jaccard":
        true_pos = (gold & predicted).sum(axis=0)
        errors = (gold ^ predicted).sum(axis=0)  # false positives + false negatives
        scores["f1_micro"] = _f1(true_pos.sum(), errors.sum())
        scores["f1_macro"] = float(np.mean([_f1(tp, err) for tp, err in zip(true_pos, errors)]))
    return headline_mean(scores) if objective == HEADLINE_MEAN else scores[objective]


def _f1(true_pos: int, errors: int) -> float:
    denominator = 2 * true_pos + errors
    return float(2 * true_pos / denominator) if denominator else 0.0


def decision_rule(params: EvaluateParams, gold: np.ndarray, probabilities: np.ndarray) -> Thresholds:
    """The rule the `evaluate` params put in force: fitted on these (validation) probabilities
    with `threshold: tuned`, else the one fixed threshold."""
    if params.threshold == "tuned":
        return fit_thresholds(
            gold, probabilities, objective=params.objective, per_label=params.per_label, shrinkage=params.shrinkage
        )
    return Thresholds.fixed(params.threshold, np.asarray(gold).shape[1])


def fit_thresholds(
    y_true: np.ndarray, probabilities: np.ndarray, *, objective: str, per_label: bool, shrinkage: float
) -> Thresholds:
    """Fit the global threshold, then (optionally) shrunk per-label ones, maximising `objective`.

    The pipeline's defaults for the three options are `EvaluateParams`' (see `decision_rule`)."""
    y_true = np.asarray(y_true).astype(np.int8)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    num_labels = y_true.shape[1]

    def score(thresholds: np.ndarray) -> float:
        return objective_score(y_true, (probabilities >= thresholds).astype(np.int8), objective)

    global_scores = [score(np.full(num_labels, t)) for t in GRID]
    best_global = float(GRID[_middle_of_best(global_scores)])
    if not per_label:
        return Thresholds(best_global, np.full(num_labels, best_global), objective)

    own = np.full(num_labels, best_global)
    for _ in range(COORDINATE_PASSES):
        for j in range(num_labels):
            candidates = []
            for t in GRID:
                trial = own.copy()
                trial[j] = t
                candidates.append(score(trial))
            own[j] = GRID[_middle_of_best(candidates)]
    positives = y_true.sum(axis=0).astype(np.float64)
    shrunk = (positives * own + shrinkage * best_global) / (positives + shrinkage) if shrinkage else own
    return Thresholds(best_global, np.round(shrunk, 4), objective, own)


def _middle_of_best(scores: Sequence[float]) -> int:
    """The index of the best score; among a run of ties, the middle one (the most robust choice)."""
    scores = np.asarray(scores)
    best = np.flatnonzero(np.isclose(scores, scores.max(), rtol=0, atol=1e-12))
    return int(best[len(best) // 2])
