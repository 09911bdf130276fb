"""Error analysis tables: each cell means what its plot's title says, on crafted label sets."""

import numpy as np
import pytest

from mlbert.error_analysis import (
    CONFIDENT_ERROR_COLUMNS,
    NONE,
    confident_errors,
    cooccurrence,
    expected_calibration_error,
    label_confusion,
    labels_per_text,
    plot_tables,
    reliability,
)

LABELS = ("anger", "disgust", "joy")
GOLD = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
PREDICTED = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])


def cell(rows, **where):
    (row,) = [row for row in rows if all(row[key] == value for key, value in where.items())]
    return row


def test_confusion_rows_are_shares_of_the_texts_that_carry_the_gold_label():
    rows = label_confusion(GOLD, PREDICTED, LABELS)
    assert len(rows) == (len(LABELS) + 1) ** 2
    assert cell(rows, gold="anger", predicted="anger") == {"gold": "anger", "predicted": "anger", "texts": 1, "share": 0.5}
    assert cell(rows, gold="anger", predicted="disgust")["share"] == 1.0  # both anger texts got disgust
    assert cell(rows, gold="joy", predicted="joy")["share"] == 1.0
    assert cell(rows, gold=NONE, predicted="joy")["texts"] == 1  # the label-free text was given joy
    assert cell(rows, gold="anger", predicted=NONE)["texts"] == 0


def test_a_label_no_text_carries_has_undefined_shares_not_zero():
    rows = label_confusion(np.zeros((2, 3), int), np.zeros((2, 3), int), LABELS)
    assert cell(rows, gold="joy", predicted="joy")["share"] is None
    assert cell(rows, gold=NONE, predicted=NONE) == {"gold": NONE, "predicted": NONE, "texts": 2, "share": 1.0}


def test_cooccurrence_is_conditional_on_the_row_label_and_skips_the_diagonal():
    rows = cooccurrence(GOLD, LABELS)
    assert len(rows) == len(LABELS) * (len(LABELS) - 1)
    assert cell(rows, label="anger", **{"with": "disgust"})["share"] == 0.5  # 1 of 2 anger texts
    assert cell(rows, label="disgust", **{"with": "anger"})["share"] == 1.0  # 1 of 1 disgust text
    assert cell(cooccurrence(PREDICTED, LABELS), label="disgust", **{"with": "anger"})["share"] == 0.5


def test_labels_per_text_counts_gold_and_predicted_set_sizes():
    rows = labels_per_text(GOLD, PREDICTED)
    assert [r["texts"] for r in rows if r["source"] == "gold"] == [1, 2, 1]
    assert [r["texts"] for r in rows if r["source"] == "predicted"] == [0, 3, 1]
    assert cell(rows, source="predicted", labels="1")["share"] == 0.75


def test_reliability_bins_match_scikit_learn_and_count_every_decision():
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=(200, 3))
    gold = (rng.uniform(size=(200, 3)) < probabilities).astype(int)  # calibrated by construction
    rows = reliability(gold, probabilities, bins=5)
    assert sum(r["decisions"] for r in rows) == 600 and len(rows) == 5
    assert all(abs(r["predicted_probability"] - r["observed_rate"]) < 0.1 for r in rows)
    assert expected_calibration_error(rows) < 0.05
    overconfident = reliability(gold, np.where(probabilities > 0.5, 0.99, 0.01), bins=5)
    assert expected_calibration_error(overconfident) > 0.15


def test_reliability_leaves_out_empty_bins_with_their_counts():
    rows = reliability(np.array([[0, 1]]), np.array([[0.05, 0.95]]), bins=10)
    assert rows == [
        {"predicted_probability": 0.05, "observed_rate": 0.0, "decisions": 1},
        {"predicted_probability": 0.95, "observed_rate": 1.0, "decisions": 1},
    ]


def test_confident_errors_put_the_most_confident_wrong_decisions_first():
    probabilities = np.array([[0.9, 0.2, 0.1], [0.55, 0.3, 0.05], [0.1, 0.1, 0.02]])
    gold = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    rows = confident_errors(["a", "b", "c"], ["t1", "t2", "t3"], gold, probabilities, np.array([0.5, 0.5, 0.4]), LABELS)
    assert [(r["id"], r["label"], r["error"]) for r in rows] == [("b", "joy", "missed"), ("b", "anger", "false positive")]
    assert rows[0] == {
        "id": "b", "label": "joy", "error": "missed", "probability": 0.05, "threshold": 0.4,
        "gold": "joy", "predicted": "anger", "text": "t2",
    }  # fmt: skip
    assert tuple(rows[0]) == CONFIDENT_ERROR_COLUMNS
    assert confident_errors(["a"], ["t"], gold[:1], probabilities[:1], 0.5, LABELS) == []


@pytest.mark.parametrize("limit", [1, 2])
def test_confident_errors_stop_at_the_limit(limit):
    rows = confident_errors(["a"], ["t"], np.array([[0, 0, 0]]), np.array([[0.9, 0.8, 0.7]]), 0.5, LABELS, limit)
    assert len(rows) == limit


def test_plot_tables_names_the_files_dvc_yaml_declares():
    import yaml
    from dvc_project import REPO_ROOT

    declared = {
        next(iter(entry)).removeprefix("plots/errors/")
        for entry in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]["plots"]
        if next(iter(entry)).startswith("plots/errors/")
    }
    tables = plot_tables(GOLD, PREDICTED * 0.9, 0.5, LABELS)
    assert set(tables) == declared
    templates = {path.stem for path in (REPO_ROOT / ".dvc/plots").glob("*.json")}
    assert {"heatmap", "reliability"} <= templates
