"""Training: which checkpoint a rerun starts from, when it starts afresh, and which epoch is kept."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from transformers import EvalPrediction

from mlbert.params import params_from_dict
from mlbert.training import (
    FINGERPRINT_FILE,
    best_epoch,
    build_training_arguments,
    compute_trainer_metrics,
    last_complete_checkpoint,
    prepare_checkpoint_dir,
)


def make_checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_a_fresh_run_creates_the_folder_with_its_fingerprint(tmp_path):
    folder = tmp_path / "checkpoints"
    assert prepare_checkpoint_dir(folder, "abc") is None
    assert json.loads((folder / FINGERPRINT_FILE).read_text()) == {"fingerprint": "abc"}


def test_the_same_run_resumes_from_its_newest_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    prepare_checkpoint_dir(folder, "abc")
    make_checkpoint(folder, 10)
    newest = make_checkpoint(folder, 20)
    make_checkpoint(folder, 9)
    assert prepare_checkpoint_dir(folder, "abc") == str(newest)


def test_checkpoints_of_another_run_are_discarded_not_resumed(tmp_path):
    folder = tmp_path / "checkpoints"
    prepare_checkpoint_dir(folder, "old params")
    make_checkpoint(folder, 10)
    assert prepare_checkpoint_dir(folder, "new params") is None
    assert not list(folder.glob("checkpoint-*"))


def test_a_half_written_checkpoint_is_removed_and_the_previous_one_used(tmp_path):
    previous = make_checkpoint(tmp_path, 10)
    half = make_checkpoint(tmp_path, 20, complete=False)
    assert last_complete_checkpoint(tmp_path) == str(previous)
    assert not half.exists()


def test_no_complete_checkpoint_means_start_afresh(tmp_path):
    make_checkpoint(tmp_path, 5, complete=False)
    assert last_complete_checkpoint(tmp_path) is None


def test_trainer_metrics_include_the_mean_of_the_three_headline_scores():
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    logits = np.array([[2.0, -2.0], [-2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]])
    scores = compute_trainer_metrics(["a", "b"], 0.5)(EvalPrediction(predictions=logits, label_ids=labels))
    assert scores["score"] == pytest.approx((scores["jaccard"] + scores["f1_micro"] + scores["f1_macro"]) / 3)


def test_the_epoch_kept_is_read_from_the_selection_metric():
    state = SimpleNamespace(
        best_metric=0.61,
        log_history=[{"epoch": 1.0, "eval_score": 0.55, "eval_f1_micro": 0.61}, {"epoch": 2.0, "eval_score": 0.61}],
    )
    assert best_epoch(state, "score") == 2.0
    assert best_epoch(state, "f1_micro") == 1.0


@pytest.mark.parametrize("metric", ["score", "f1_macro"])
def test_the_selection_metric_becomes_metric_for_best_model(tmp_path, metric):
    params = params_from_dict({"train": {"select_epoch_by": metric}}).train
    assert build_training_arguments(params, tmp_path).metric_for_best_model == metric
