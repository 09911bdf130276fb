"""`summarise-seeds`: experiments grouped by everything but the seed, each score as mean ± std."""

from __future__ import annotations

import statistics

import pytest

from mlbert.seeds import (
    Experiment,
    SeedSummaryError,
    experiments_of,
    flatten,
    group_by_all_but_seed,
    scores_of,
    summary_table,
)


def experiment(rev: str, seed: int, lr: float, jaccard: float) -> Experiment:
    params = flatten({"train": {"seed": seed, "learning_rate": lr}, "model": {"head": "label_aware"}})
    metrics = {"test": {"jaccard": jaccard, "f1_micro": 0.7, "f1_macro": 0.5}, "validation": {}}
    return Experiment(rev, params, scores_of(metrics))


def test_experiments_that_differ_only_in_the_seed_form_one_group_per_other_setting():
    runs = [experiment("a", 42, 1e-4, 0.58), experiment("b", 43, 1e-4, 0.56), experiment("c", 42, 5e-5, 0.55)]
    groups = group_by_all_but_seed(runs)
    assert [(group.varying, [m.rev for m in group.members]) for group in groups] == [
        ({"train.learning_rate": 1e-4}, ["a", "b"]),
        ({"train.learning_rate": 5e-5}, ["c"]),
    ]


def test_a_group_reports_the_mean_the_sample_standard_deviation_and_the_range():
    values = [0.591, 0.571, 0.576]
    (group,) = group_by_all_but_seed(experiment(str(seed), seed, 1e-4, v) for seed, v in zip((42, 43, 44), values))
    mean, std, low, high = group.summary("test.jaccard")
    assert mean == pytest.approx(0.5793333, abs=1e-6) and std == pytest.approx(statistics.stdev(values))
    assert (low, high) == (0.571, 0.591)


def test_the_headline_mean_is_the_mean_of_the_three_scores():
    scores = scores_of({"test": {"jaccard": 0.6, "f1_micro": 0.7, "f1_macro": 0.5}})
    assert scores["test.headline_mean"] == pytest.approx(0.6)


def test_the_table_has_one_row_per_group_with_its_seeds():
    groups = group_by_all_but_seed([experiment("a", 42, 1e-4, 0.58), experiment("b", 43, 1e-4, 0.56)])
    table = summary_table(groups).splitlines()
    assert table[0].startswith("| group | seeds | test jaccard")
    assert table[2].startswith("| (all the same but the seed) | 42, 43 | 0.5700 ± 0.0141 (0.5600–0.5800) |")


def test_a_single_run_has_no_spread_rather_than_a_spread_of_zero():
    (group,) = group_by_all_but_seed([experiment("a", 42, 1e-4, 0.58)])
    assert group.summary("test.jaccard") == (0.58, None, 0.58, 0.58)
    assert summary_table([group]).splitlines()[2].startswith("| (all the same but the seed) | 42 | 0.5800 (one run) |")


@pytest.mark.parametrize("second", ["a", "rerun-of-a"])  # the same revision twice, or a rerun of its seed
def test_two_runs_of_one_seed_are_refused_not_counted_as_two_seeds(second):
    with pytest.raises(SeedSummaryError, match=f"a and {second} have the same seed \\(42\\)"):
        group_by_all_but_seed([experiment("a", 42, 1e-4, 0.58), experiment(second, 42, 1e-4, 0.58)])


def test_an_unknown_baseline_is_one_error_naming_it(tmp_path, monkeypatch):
    import subprocess
    import sys

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeedSummaryError, match="cannot list the experiments of 'no-such-rev'"):
        experiments_of("no-such-rev")
