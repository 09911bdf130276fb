"""Guided sweeps: search.yaml is checked before any trial runs, trial params become `-S` args DVC
reads back as written, and a trial below the earlier trials' median stops in the train stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbert.search import (
    SearchError,
    absolute_storage,
    objective_value,
    read_config,
    requeue_interrupted,
    set_args,
    summary_table,
)
from mlbert.trial_pruning import (
    PRUNED_ATTR,
    TRIAL_ENV,
    TrialPruned,
    pruning_callbacks,
    trial_from_environment,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return path


def test_the_shipped_search_space_is_valid_against_the_shipped_params():
    config = read_config(REPO_ROOT / "search.yaml", REPO_ROOT / "params.yaml")
    assert config.objective == "headline_mean" and config.trials >= 1
    kinds = {dimension.key: dimension.kind for dimension in config.space}
    assert kinds["train.num_train_epochs"] == "int" and kinds["train.learning_rate"] == "float"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("space: {train.learning_rat: {low: 1.0e-5, high: 1.0e-4}}", "train.learning_rat is not a key in"),
        ("space: {train.learning_rate: {low: -1.0, high: 1.0e-4}}", "train.learning_rate = -1.0 is not a valid param"),
        ("space: {train.learning_rate: {low: 1.0e-4, high: 1.0e-5}}", "low < high"),
        ("space: {train.learning_rate: {low: 0.0, high: 1.0e-4, log: true}}", "a log range must be above 0"),
        ("space: {train.learning_rate: {low: 1.0e-5}}", "expected low and high"),
        ("space: {learning_rate: {low: 1.0e-5, high: 1.0e-4}}", "a params.yaml group and key"),
        ("space: {train.per_device_train_batch_size: {choices: []}}", "choices must be a non-empty list"),
        ("space: {train.per_device_train_batch_size: {choices: [16, 0]}}", "= 0 is not a valid param"),
        ("objective: test_f1\nspace: {train.seed: {low: 1, high: 5}}", "objective must be one of"),
        ("trials: 0\nspace: {train.seed: {low: 1, high: 5}}", "trials must be an integer >= 1"),
        ("pruner: {patience: 2}\nspace: {train.seed: {low: 1, high: 5}}", "pruner takes startup_trials and warmup_epochs"),
        ("spaces: {}", "unknown key(s) spaces"),
        ("objective: jaccard", "space must map params.yaml keys"),
    ],
)
def test_a_bad_search_file_is_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(SearchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_config(write_config(tmp_path, text), REPO_ROOT / "params.yaml")


def test_trial_params_become_set_args_that_dvc_reads_back_as_written():
    args = set_args({"train.learning_rate": 0.000123, "train.num_train_epochs": 5, "model.head": "cls"})
    assert args == ["-S", "train.learning_rate=0.000123", "-S", "train.num_train_epochs=5", "-S", 'model.head="cls"']


def test_the_objective_is_read_from_validation_at_the_tuned_thresholds():
    metrics = {"validation": {"jaccard": 0.6, "f1_micro": 0.7, "f1_macro": 0.5}, "test": {"jaccard": 0.0}}
    assert objective_value(metrics, "headline_mean") == pytest.approx(0.6)
    assert objective_value(metrics, "f1_macro") == 0.5


def test_a_relative_sqlite_storage_is_made_absolute_for_the_trials_temporary_copies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_storage("sqlite:///search.db") == f"sqlite:///{tmp_path / 'search.db'}"
    assert absolute_storage("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_storage("postgresql://u@db/optuna") == "postgresql://u@db/optuna"


def test_data_that_git_ignores_and_dvc_does_not_track_is_refused_before_any_trial(tmp_path, monkeypatch):
    import subprocess

    from mlbert.search import check_data_reaches_trials

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/.gitignore").write_text("*\n!.gitignore\n")
    (tmp_path / "raw/train.csv").write_text("text,labels\n")
    with pytest.raises(SearchError, match="prepare.dir raw holds files that neither git nor DVC tracks .*dvc add raw"):
        check_data_reaches_trials("raw")
    check_data_reaches_trials(str(tmp_path / "raw"))  # an absolute path reaches every copy
    (tmp_path / "raw.dvc").write_text("outs:\n- path: raw\n")
    check_data_reaches_trials("raw")  # tracked by DVC: checked out in every copy


def test_outside_a_search_training_gets_no_pruning_callback(monkeypatch):
    monkeypatch.delenv(TRIAL_ENV, raising=False)
    assert pruning_callbacks() == [] and trial_from_environment() is None
    monkeypatch.setenv(TRIAL_ENV, '{"storage": "sqlite://"}')
    with pytest.raises(Exception, match="lacks metric, number, pruner, study"):
        trial_from_environment()


def test_a_trial_below_the_median_of_earlier_trials_is_pruned_in_the_train_stage(tmp_path, monkeypatch):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for value in (0.60, 0.62):  # two earlier trials, scored each epoch
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(value, step=epoch)
        study.tell(trial, value)
    current = study.ask()
    pruner = {"startup_trials": 2, "warmup_epochs": 1}
    trial_spec = {"storage": storage, "study": "s", "number": current.number, "metric": "headline_mean", "pruner": pruner}
    monkeypatch.setenv(TRIAL_ENV, json.dumps(trial_spec))
    (callback,) = pruning_callbacks()

    class State:
        epoch = 1.0

    callback.on_evaluate(None, State(), None, metrics={"eval_headline_mean": 0.30})  # epoch 1: still warming up
    State.epoch = 2.0
    with pytest.raises(TrialPruned, match="pruned after epoch 2: validation headline_mean 0.3000"):
        callback.on_evaluate(None, State(), None, metrics={"eval_headline_mean": 0.30})
    stored = optuna.load_study(study_name="s", storage=storage).trials[current.number]
    assert stored.user_attrs[PRUNED_ATTR] == 2 and stored.intermediate_values == {1: 0.30, 2: 0.30}


def test_a_good_trial_is_not_pruned(tmp_path, monkeypatch):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    earlier = study.ask()
    earlier.report(0.5, step=2)
    study.tell(earlier, 0.5)
    current = study.ask()
    trial_spec = {"storage": storage, "study": "s", "number": current.number, "metric": "jaccard",
                  "pruner": {"startup_trials": 1, "warmup_epochs": 0}}  # fmt: skip
    monkeypatch.setenv(TRIAL_ENV, json.dumps(trial_spec))
    (callback,) = pruning_callbacks()

    class State:
        epoch = 2.0

    callback.on_evaluate(None, State(), None, metrics={"eval_jaccard": 0.55})


def test_an_interrupted_trial_is_queued_again_once_and_the_summary_lists_every_trial(tmp_path):
    import optuna

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize")
    done = study.ask({"train.learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)})
    done.set_user_attr("experiment", "s-0")
    study.tell(done, 0.61)
    stopped = study.ask({"train.learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)})
    stopped.set_user_attr("interrupted", True)
    study.tell(stopped, state=optuna.trial.TrialState.FAIL)
    assert requeue_interrupted(study) == 1
    assert requeue_interrupted(study) == 0  # already queued
    waiting = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert waiting[0].params == stopped.params or waiting[0].system_attrs["fixed_params"] == stopped.params
    table = summary_table(study, "headline_mean")
    assert "| 0 (best) | complete | 0.6100 |" in table and "s-0 |" in table
    assert next(line for line in table.splitlines() if line.startswith("| 1 | fail |")).endswith("| - |")
