"""A guided search on the tiny slice: each trial is a real DVC experiment that `dvc exp show`
lists with its params and metrics, the search resumes where it stopped, and a trial that repeats
earlier params is served by DVC's run-cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dvc_project import data_slice, dvc, make_project, run

pytestmark = pytest.mark.e2e

SPACE = """\
objective: headline_mean
trials: 2
pruner: {startup_trials: 5, warmup_epochs: 1}
space:
  train.learning_rate: {low: 5.0e-5, high: 2.0e-4, log: true}
"""


def search(repo: Path, *args: str):
    return run(repo, str(Path(sys.executable).parent / "search"), "--seed", "3", *args)


def test_a_two_trial_search_runs_experiments_resumes_and_reuses_the_run_cache(tmp_path):
    import optuna

    repo = make_project(tmp_path / "project", data_slice())
    (repo / "search.yaml").write_text(SPACE)
    run(repo, "git", "commit", "-qam", "a small search space")
    params_before = (repo / "params.yaml").read_text()

    first = search(repo, "--study", "lr")
    assert "0 of 2 trials finished" in first.stdout
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = {e["name"]: e for commit in shown for e in (commit.get("experiments") or [])}
    assert {"lr-0", "lr-1"} <= set(experiments)
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{repo / 'search.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.intermediate_values for t in study.trials)  # the train stage reported each epoch
    for trial in study.trials:
        metrics = json.loads(run(repo, sys.executable, "-c", f"import dvc.api; print(dvc.api.read('metrics.json', rev='lr-{trial.number}'))").stdout)
        scores = metrics["validation"]
        assert trial.value == pytest.approx((scores["jaccard"] + scores["f1_micro"] + scores["f1_macro"]) / 3)
        recorded = dvc(repo, "params", "diff", "HEAD", f"lr-{trial.number}", "--json").stdout
        assert f"{trial.params['train.learning_rate']}"[:6] in recorded  # the trial's param is the experiment's
    assert (repo / "params.yaml").read_text() == params_before  # --temp: the workspace is untouched
    assert "| 0" in first.stdout and "(best)" in first.stdout

    study.enqueue_trial(study.trials[0].params)  # a repeat of trial 0's params
    again = search(repo, "--study", "lr", "--trials", "3")
    assert "2 of 3 trials finished" in again.stdout
    assert "Stage 'train' is cached - skipping run" in again.stdout + again.stderr  # DVC's run-cache
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{repo / 'search.db'}")
    assert len(study.trials) == 3 and study.trials[2].value == pytest.approx(study.trials[0].value)
    assert "3 of 3" in search(repo, "--study", "lr", "--trials", "3").stdout  # nothing left to run
