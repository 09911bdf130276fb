"""Threshold tuning: what it fits, how shrinkage pulls rare labels, what the objective changes."""

import numpy as np
import pytest

from mlbert.params import EvaluateParams
from mlbert.thresholds import GRID, Thresholds, decision_rule, fit_thresholds, objective_score


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
    rule = fit_thresholds(gold, probs, objective="f1_micro", per_label=False, shrinkage=0)
    assert rule.default in GRID
    assert np.all(rule.per_label == rule.default)


def test_per_label_thresholds_without_shrinkage_separate_each_label():
    gold, probs = separable()
    rule = fit_thresholds(gold, probs, objective="jaccard", per_label=True, shrinkage=0)
    assert 0.12 <= rule.per_label[1] <= 0.16  # the rare label gets its own, lower threshold
    assert 0.12 <= rule.per_label[0] <= 0.32
    predicted = (probs >= rule.per_label).astype(np.int8)
    assert objective_score(gold, predicted, "jaccard") == 1.0


def test_shrinkage_pulls_a_rare_label_toward_the_global_threshold_by_its_positives():
    gold, probs = separable()
    rule = fit_thresholds(gold, probs, objective="jaccard", per_label=True, shrinkage=8.0)
    own, positives = rule.unshrunk[1], 8
    expected = (positives * own + 8.0 * rule.default) / (positives + 8.0)
    assert rule.per_label[1] == pytest.approx(expected, abs=1e-4)
    assert min(own, rule.default) <= rule.per_label[1] <= max(own, rule.default)


# A common label `a` that every threshold from 0.02 to 0.95 gets right, and a rare label `b`
# whose one positive (0.205) scores below two negatives (0.405):
#                 gold     p(a)  p(b)   t <= 0.20: pred, Jaccard   0.41 <= t <= 0.95: pred, Jaccard
#     text 1      a, b     0.95  0.205  a, b        1              a          1/2
#     text 2      a        0.95  0.405  a, b        1/2            a          1
#     text 3      a        0.95  0.405  a, b        1/2            a          1
# Low t:  Jaccard 2/3; F1(b) = 2*1 / (2*1 + 2) = 1/2, so macro-F1 (1 + 1/2) / 2 = 3/4.
# High t: Jaccard 5/6; F1(b) = 0,                     so macro-F1 (1 + 0) / 2 = 1/2.
# (0.20 < t <= 0.40 predicts b on the two wrong texts only: Jaccard 1/2, macro-F1 1/2.)
RARE_GOLD = np.array([[1, 1], [1, 0], [1, 0]])
RARE_PROBS = np.array([[0.95, 0.205], [0.95, 0.405], [0.95, 0.405]])


def test_the_objective_decides_the_threshold_macro_f1_catches_the_rare_label_jaccard_drops_it():
    macro = fit_thresholds(RARE_GOLD, RARE_PROBS, objective="f1_macro", per_label=False, shrinkage=0)
    jaccard = fit_thresholds(RARE_GOLD, RARE_PROBS, objective="jaccard", per_label=False, shrinkage=0)
    assert macro.default <= 0.20  # predicts b on text 1 (and on texts 2 and 3)
    assert 0.41 <= jaccard.default <= 0.95  # predicts b nowhere


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
    assert objective_score(gold, predicted, "headline_mean") == pytest.approx(np.mean(list(expected.values())), abs=1e-12)


def test_a_tuned_decision_rule_is_fitted_on_the_probabilities_it_is_given():
    gold, probs = separable()
    params = EvaluateParams(threshold="tuned", objective="jaccard", per_label=True, shrinkage=2.0)
    rule = decision_rule(params, gold, probs)
    fitted = fit_thresholds(gold, probs, objective="jaccard", per_label=True, shrinkage=2.0)
    assert (rule.default, rule.objective) == (fitted.default, "jaccard")
    np.testing.assert_array_equal(rule.per_label, fitted.per_label)
    np.testing.assert_array_equal(rule.unshrunk, fitted.unshrunk)


def test_a_tuned_decision_rule_maximises_the_objective_the_params_name():
    low = decision_rule(EvaluateParams(objective="f1_macro"), RARE_GOLD, RARE_PROBS)
    high = decision_rule(EvaluateParams(objective="jaccard"), RARE_GOLD, RARE_PROBS)
    assert low.default <= 0.20 and 0.41 <= high.default <= 0.95  # see RARE_GOLD


def test_a_fixed_threshold_param_is_the_rule_for_every_label_whatever_the_probabilities():
    gold, probs = separable()
    rule = decision_rule(EvaluateParams(threshold=0.3), gold, probs)
    assert rule.default == 0.3
    assert rule.per_label.tolist() == [0.3, 0.3]
