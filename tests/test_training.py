"""Training: which checkpoint a rerun starts from, when it starts afresh, and which epoch is kept."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from transformers import EvalPrediction

from mlbert.params import ParamsError, params_from_dict
from mlbert.training import (
    FINGERPRINT_FILE,
    average_weights,
    best_epoch,
    build_training_arguments,
    checkpoint_folders,
    compute_trainer_metrics,
    last_complete_checkpoint,
    load_averaged_checkpoints,
    prepare_checkpoint_dir,
    top_epochs,
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


def test_the_best_epochs_are_ranked_by_the_selection_metric_earliest_first_on_ties():
    state = SimpleNamespace(
        log_history=[
            {"epoch": 1.0, "step": 10, "eval_score": 0.50},
            {"loss": 0.3, "step": 15},
            {"epoch": 2.0, "step": 20, "eval_score": 0.61},
            {"epoch": 3.0, "step": 30, "eval_score": 0.58},
            {"epoch": 4.0, "step": 40, "eval_score": 0.61},
        ]
    )
    assert [entry["step"] for entry in top_epochs(state, "score", 3)] == [20, 40, 30]


def test_averaging_needs_every_chosen_checkpoint(tmp_path):
    make_checkpoint(tmp_path, 20)
    with pytest.raises(FileNotFoundError, match="checkpoint-30"):
        checkpoint_folders([{"step": 20}, {"step": 30}], tmp_path)


def test_weights_are_averaged_and_integer_buffers_kept():
    import torch

    states = [
        {"w": torch.tensor([1.0, 3.0], dtype=torch.bfloat16), "ids": torch.tensor([0, 1])},
        {"w": torch.tensor([3.0, 5.0], dtype=torch.bfloat16), "ids": torch.tensor([0, 1])},
    ]
    averaged = average_weights(states)
    assert averaged["w"].dtype == torch.bfloat16 and averaged["w"].tolist() == [2.0, 4.0]
    assert averaged["ids"].tolist() == [0, 1]


def test_averaged_checkpoints_load_into_the_model(tmp_path):
    import torch
    from safetensors.torch import save_file

    model = torch.nn.Linear(2, 1)
    for step, value in ((10, 1.0), (20, 3.0)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        save_file({"weight": torch.full((1, 2), value), "bias": torch.full((1,), value)}, str(folder / "model.safetensors"))
    load_averaged_checkpoints(model, checkpoint_folders([{"step": 10}, {"step": 20}], tmp_path))
    assert model.weight.tolist() == [[2.0, 2.0]] and model.bias.tolist() == [2.0]


def test_averaging_refuses_a_save_total_limit_that_would_delete_epochs():
    with pytest.raises(ParamsError, match="train.save_total_limit .2. would delete epochs"):
        params_from_dict({"train": {"average_top_epochs": 3, "save_total_limit": 2}})


def test_averaging_keeps_every_epoch_checkpoint(tmp_path):
    params = params_from_dict({"train": {"average_top_epochs": 3}}).train
    assert build_training_arguments(params, tmp_path).save_total_limit is None
