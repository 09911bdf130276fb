"""`compare-runs`: two runs on the same texts, each metric's difference and its paired-bootstrap
interval; runs read back from the per-text predictions evaluate writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlbert.cli import compare_main
from mlbert.comparison import (
    COMPARED_METRICS,
    ComparisonError,
    Run,
    paired_bootstrap,
    prediction_frame,
    read_run,
    scores,
)
from mlbert.metrics import multilabel_metrics

LABELS = ["anger", "joy", "fear"]


def make_run(rev: str, gold: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> Run:
    ids = [f"t{i}" for i in range(len(gold))]
    return Run(rev, ids, LABELS, gold.astype(np.int8), probabilities.astype(np.float32), np.full(3, threshold, np.float32))


@pytest.fixture
def gold():
    return (np.random.default_rng(0).random((300, 3)) < 0.3).astype(np.int8)


def noisy(gold: np.ndarray, flip: float, seed: int) -> np.ndarray:
    """Probabilities that decide like `gold` except for a share `flip` of the cells."""
    rng = np.random.default_rng(seed)
    decided = np.where(rng.random(gold.shape) < flip, 1 - gold, gold)
    return np.where(decided == 1, 0.8, 0.2)


def test_scores_count_as_sklearn_does(gold):
    run = make_run("a", gold, noisy(gold, 0.2, 1))
    reference = multilabel_metrics(run.gold, run.probabilities, 0.5, LABELS)
    got = scores(run)
    for metric in ("jaccard", "f1_micro", "f1_macro"):
        assert got[metric] == pytest.approx(reference[metric], abs=1e-12)


def test_a_run_against_itself_differs_by_zero_with_a_zero_interval(gold):
    run = make_run("a", gold, noisy(gold, 0.2, 1))
    for row in paired_bootstrap(run, run, samples=200).values():
        assert row["difference"] == row["low"] == row["high"] == 0.0


def test_a_clearly_better_run_gets_an_interval_above_zero_around_its_difference(gold):
    worse, better = make_run("a", gold, noisy(gold, 0.3, 1)), make_run("b", gold, noisy(gold, 0.05, 2))
    result = paired_bootstrap(worse, better, samples=500)
    assert set(result) == set(COMPARED_METRICS)
    for row in result.values():
        assert 0.0 < row["low"] <= row["difference"] <= row["high"]
        assert row["difference"] == pytest.approx(row["b"] - row["a"])


def test_two_runs_of_the_same_quality_get_an_interval_that_spans_zero(gold):
    a, b = make_run("a", gold, noisy(gold, 0.2, 1)), make_run("b", gold, noisy(gold, 0.2, 2))
    row = paired_bootstrap(a, b, samples=500)["f1_micro"]
    assert row["low"] < 0.0 < row["high"]


def test_each_run_is_scored_with_its_own_thresholds(gold):
    probabilities = np.where(gold == 1, 0.4, 0.1)  # right only below 0.5
    strict, tuned = make_run("a", gold, probabilities, 0.5), make_run("b", gold, probabilities, 0.3)
    assert paired_bootstrap(strict, tuned, samples=100)["f1_micro"]["b"] == 1.0


def test_runs_on_different_texts_are_not_compared(gold):
    a = make_run("a", gold, noisy(gold, 0.2, 1))
    b = make_run("b", gold[:-1], noisy(gold, 0.2, 1)[:-1])
    with pytest.raises(ComparisonError, match="scored different texts"):
        paired_bootstrap(a, b, samples=100)


def write_workspace_run(root, gold, probabilities, default=0.5):
    (root / "predictions").mkdir(parents=True)
    (root / "models").mkdir()
    names = [[LABELS[j] for j in np.flatnonzero(row)] for row in gold]
    frame = prediction_frame([f"t{i}" for i in range(len(gold))], names, probabilities, LABELS)
    frame.to_parquet(root / "predictions/test.parquet", index=False)
    (root / "models/thresholds.json").write_text(json.dumps({"default": default, "per_label": {"joy": 0.4}}))


def test_a_run_reads_back_what_evaluate_writes(tmp_path, gold):
    probabilities = noisy(gold, 0.2, 1)
    write_workspace_run(tmp_path, gold, probabilities)
    run = read_run("workspace", "test", repo=str(tmp_path))
    assert run.labels == LABELS and run.ids[:2] == ["t0", "t1"]
    assert np.array_equal(run.gold, gold) and np.allclose(run.probabilities, probabilities)
    assert run.thresholds.tolist() == pytest.approx([0.5, 0.4, 0.5])


def test_a_revision_without_predictions_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert compare_main(["workspace", "workspace"]) == 1
    assert "compare-runs: error: predictions/test.parquet not found in the workspace" in capsys.readouterr().err


def test_the_command_prints_a_table_with_one_row_per_metric(tmp_path, gold, monkeypatch, capsys):
    write_workspace_run(tmp_path, gold, noisy(gold, 0.2, 1))
    monkeypatch.chdir(tmp_path)
    assert compare_main(["workspace", "workspace", "--samples", "100"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| metric")]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == list(COMPARED_METRICS)
    assert all("+0.0000 | [+0.0000, +0.0000]" in row for row in rows)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], "--seed must be at least 0"),
        (["--samples", "99"], "--samples must be in 100..100000"),
        (["--samples", "100000000"], "--samples must be in 100..100000"),  # would run for hours, silently
    ],
)
def test_out_of_range_options_are_usage_errors_naming_the_option(flags, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        compare_main(["workspace", "workspace", *flags])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
