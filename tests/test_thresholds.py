"""Threshold tuning: what it fits, how shrinkage pulls rare labels, what the objective changes."""

import numpy as np
import pytest

from mlbert.thresholds import GRID, Thresholds, fit_thresholds, objective_score


def separable(n=200, seed=0):
    """Two labels: a common one whose positives score above 0.3, a rare one whose positives
    score above 0.15; negatives score below those."""
    rng = np.random.default_rng(seed)
    gold = np.zeros((n, 2), dtype=np.int8)
    gold[: n // 2, 0] = 1
    gold[:8, 1] = 1
    probs = np.where(gold == 1, rng.uniform(0.32, 0.9, gold.shape), rng.uniform(0.0, 0.12, gold.shape))
    probs[:8, 1] = rng.uniform(0.16, 0.25, 8)
    return gold, probs


def test_a_global_threshold_is_one_grid_value_for_every_label():
    gold, probs = separable()
    rule = fit_thresholds(gold, probs, "f1_micro", per_label=False)
    assert rule.global_ in GRID
    assert np.all(rule.per_label == rule.global_)


def test_per_label_thresholds_without_shrinkage_separate_each_label():
    gold, probs = separable()
    rule = fit_thresholds(gold, probs, "jaccard", per_label=True, shrinkage=0)
    assert 0.12 <= rule.per_label[1] <= 0.16  # the rare label gets its own, lower threshold
    assert 0.12 <= rule.per_label[0] <= 0.32
    predicted = (probs >= rule.per_label).astype(np.int8)
    assert objective_score(gold, predicted, "jaccard") == 1.0


def test_shrinkage_pulls_a_rare_label_toward_the_global_threshold_by_its_positives():
    gold, probs = separable()
    rule = fit_thresholds(gold, probs, "jaccard", per_label=True, shrinkage=8.0)
    own, positives = rule.own[1], 8
    expected = (positives * own + 8.0 * rule.global_) / (positives + 8.0)
    assert rule.per_label[1] == pytest.approx(expected, abs=1e-4)
    assert min(own, rule.global_) <= rule.per_label[1] <= max(own, rule.global_)


def test_the_objective_decides_what_is_maximised():
    gold, probs = separable()
    for objective in ("jaccard", "f1_micro", "f1_macro"):
        rule = fit_thresholds(gold, probs, objective, per_label=True, shrinkage=0)
        fitted = objective_score(gold, (probs >= rule.per_label).astype(np.int8), objective)
        at_half = objective_score(gold, (probs >= 0.5).astype(np.int8), objective)
        assert fitted >= at_half


def test_an_unknown_objective_is_named():
    with pytest.raises(ValueError, match="unknown threshold objective 'accuracy'"):
        objective_score(np.zeros((2, 2)), np.zeros((2, 2)), "accuracy")


def test_the_saved_rule_names_every_label():
    rule = Thresholds(0.4, np.array([0.4, 0.25]), "jaccard")
    assert rule.to_json(["a", "b"]) == {"default": 0.4, "objective": "jaccard", "per_label": {"a": 0.4, "b": 0.25}}
    assert Thresholds.fixed(0.5, 3).per_label.tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("seed", range(5))
def test_the_objective_counts_as_sklearn_does(seed):
    from sklearn.metrics import f1_score, jaccard_score

    rng = np.random.default_rng(seed)
    gold = (rng.random((60, 5)) < 0.2).astype(np.int8)
    predicted = (rng.random((60, 5)) < 0.2).astype(np.int8)
    gold[:, 4] = predicted[:, 4] = 0  # a label nobody has or predicts: undefined F1
    gold[:3] = predicted[:3] = 0  # texts with no labels at all: Jaccard 1
    expected = {
        "jaccard": jaccard_score(gold, predicted, average="samples", zero_division=1.0),
        "f1_micro": f1_score(gold, predicted, average="micro", zero_division=0.0),
        "f1_macro": f1_score(gold, predicted, average="macro", zero_division=0.0),
    }
    for objective, value in expected.items():
        assert objective_score(gold, predicted, objective) == pytest.approx(value, abs=1e-12)
    assert objective_score(gold, predicted, "score") == pytest.approx(np.mean(list(expected.values())), abs=1e-12)
