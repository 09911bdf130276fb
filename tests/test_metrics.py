"""Every metric against values computed by hand on tiny examples."""

import numpy as np
import pytest

from mlbert.metrics import apply_threshold, multilabel_metrics, precision_recall_points, roc_auc_scores

LABELS = ["a", "b", "c"]
GOLD = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
PROBS = np.array(
    [
        [0.9, 0.2, 0.6],  # pred a,c    gold a,c   -> exact, jaccard 1
        [0.7, 0.8, 0.1],  # pred a,b    gold b     -> jaccard 1/2
        [0.1, 0.2, 0.3],  # pred none   gold none  -> exact, jaccard 1 (empty-set rule)
        [0.6, 0.4, 0.55],  # pred a,c   gold a,b   -> jaccard 1/3
    ]
)


@pytest.fixture
def scores():
    return multilabel_metrics(GOLD, PROBS, 0.5, LABELS)


def test_threshold_is_inclusive():
    np.testing.assert_array_equal(apply_threshold([[0.5, 0.49]], 0.5), [[1, 0]])


def test_jaccard_is_the_semeval_score_with_empty_sets_counting_one(scores):
    assert scores["jaccard"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 3) / 4)


def test_accuracy_is_exact_match(scores):
    assert scores["accuracy"] == pytest.approx(2 / 4)


def test_micro_f1_pools_all_decisions(scores):
    # predictions: 6 positives, 4 of them right; gold: 5 positives
    precision, recall = 4 / 6, 4 / 5
    assert scores["f1_micro"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_macro_f1_averages_per_label_f1(scores):
    f1_a = 2 * (2 / 3) * 1 / (2 / 3 + 1)  # pred 3 (2 right), gold 2
    f1_b = 2 * 1 * (1 / 2) / (1 + 1 / 2)  # pred 1 (right), gold 2
    f1_c = 2 * (1 / 2) * 1 / (1 / 2 + 1)  # pred 2 (1 right), gold 1
    assert scores["f1_macro"] == pytest.approx((f1_a + f1_b + f1_c) / 3)


def test_per_label_scores_and_support(scores):
    assert scores["per_label"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


def test_roc_auc_on_probabilities_micro_and_macro():
    gold = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.3], [0.2, 0.4], [0.8, 0.2], [0.1, 0.1]])
    micro, macro = roc_auc_scores(gold, probs)
    # label a: perfect ranking (1.0); label b: positives 0.4, 0.2 vs negatives 0.3, 0.1 -> 3 of 4 pairs
    assert macro == pytest.approx((1.0 + 0.75) / 2)
    # pooled: positives {.9,.4,.8,.2} vs negatives {.3,.2,.1,.1}: 14.5 of 16 pairs ordered right
    assert micro == pytest.approx(14.5 / 16)


def test_roc_auc_macro_skips_a_label_without_positives():
    gold = np.array([[1, 0], [0, 0], [1, 0]])
    probs = np.array([[0.9, 0.5], [0.1, 0.5], [0.8, 0.5]])
    with pytest.warns(UserWarning, match="undefined for 1 label"):
        micro, macro = roc_auc_scores(gold, probs)
    assert macro == pytest.approx(1.0)
    assert micro is not None


def test_scores_are_plain_python_numbers_not_numpy_scalars(scores):
    # json.dumps accepts numpy floats, so only the exact types show a numpy scalar slipping through.
    per_label = scores["per_label"]
    headline = {key: value for key, value in scores.items() if key not in ("n_examples", "per_label")}
    assert set(headline) == {"f1_micro", "f1_macro", "roc_auc_micro", "roc_auc_macro", "accuracy", "jaccard"}
    assert {key: type(value) for key, value in headline.items()} == dict.fromkeys(headline, float)
    assert type(scores["n_examples"]) is int and scores["n_examples"] == 4
    for label in LABELS:
        assert {key: type(value) for key, value in per_label[label].items()} == {
            "precision": float, "recall": float, "f1": float, "support": int
        }  # fmt: skip


def test_precision_recall_points_per_label():
    curves = precision_recall_points(GOLD, PROBS, LABELS)
    assert set(curves) == set(LABELS)
    assert all({"precision", "recall", "threshold"} == set(point) for point in curves["a"])


def test_a_label_without_positives_gets_null_recall_with_a_warning_not_a_crash():
    gold = np.array([[1, 0], [0, 0], [1, 0]])
    probs = np.array([[0.9, 0.1], [0.2, 0.1], [0.4, 0.2]])
    with pytest.warns(UserWarning, match="undefined .* for: b"):
        scores = multilabel_metrics(gold, probs, 0.5, ["a", "b"])
    assert scores["per_label"]["b"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert scores["f1_macro"] == pytest.approx(2 / 3)  # label a only: P 1, R 1/2
    assert scores["roc_auc_macro"] == pytest.approx(1.0)


def test_a_label_never_predicted_has_null_precision_but_a_real_f1_of_zero():
    gold = np.array([[1, 1], [0, 1]])
    probs = np.array([[0.9, 0.1], [0.1, 0.2]])
    with pytest.warns(UserWarning, match="for: b"):
        scores = multilabel_metrics(gold, probs, 0.5, ["a", "b"])
    assert scores["per_label"]["b"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 2}
