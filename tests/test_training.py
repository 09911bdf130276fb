"""Training: which checkpoint a rerun starts from, when it starts afresh, and which epoch is kept."""

import dataclasses
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_models import tiny_classifier
from transformers import EvalPrediction

from mlbert.checkpoints import (
    FINGERPRINT_FILE,
    average_weights,
    best_epoch,
    checkpoint_folders,
    last_complete_checkpoint,
    load_averaged_checkpoints,
    prepare_checkpoint_dir,
    top_epochs,
)
from mlbert.errors import ParamsError
from mlbert.params import params_from_dict
from mlbert.trainer import build_training_arguments, compute_trainer_metrics


def make_checkpoint(folder, step, complete=True):
    """A checkpoint folder as the Trainer writes it: real weights, then trainer_state.json last."""
    import torch
    from safetensors.torch import save_file

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"weight": torch.zeros(64)}, str(path / "model.safetensors"))
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
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


def test_checkpoints_of_a_run_with_other_params_or_data_are_discarded_not_resumed(tmp_path):
    from mlbert.checkpoints import run_fingerprint

    data = tmp_path / "tokenized"
    data.mkdir()
    (data / "train.arrow").write_bytes(b"encoded texts")
    params = {"train": {"learning_rate": 1e-4, "seed": 42}}
    first = run_fingerprint(params, data)
    folder = tmp_path / "checkpoints"
    for changed in ("params", "data"):
        prepare_checkpoint_dir(folder, first)
        make_checkpoint(folder, 10)
        if changed == "params":
            now = run_fingerprint({"train": {"learning_rate": 5e-5, "seed": 42}}, data)
        else:
            (data / "train.arrow").write_bytes(b"other encoded texts")
            now = run_fingerprint(params, data)
        assert prepare_checkpoint_dir(folder, now) is None, changed
        assert not list(folder.glob("checkpoint-*")), changed
        (data / "train.arrow").write_bytes(b"encoded texts")
        shutil.rmtree(folder)


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


def test_a_checkpoint_whose_state_was_cut_short_is_removed_and_the_previous_one_used(tmp_path):
    previous = make_checkpoint(tmp_path, 10)
    cut = make_checkpoint(tmp_path, 20)
    state = (cut / "trainer_state.json").read_text()
    (cut / "trainer_state.json").write_text(state[: len(state) // 2])
    assert last_complete_checkpoint(tmp_path) == str(previous)
    assert not cut.exists()


def test_a_checkpoint_whose_weights_were_cut_short_is_removed_and_the_previous_one_used(tmp_path):
    previous = make_checkpoint(tmp_path, 10)
    cut = make_checkpoint(tmp_path, 20)
    weights = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(weights[:-16])
    assert last_complete_checkpoint(tmp_path) == str(previous)
    assert not cut.exists()


def test_a_damaged_fingerprint_marker_starts_afresh_instead_of_crashing(tmp_path):
    folder = tmp_path / "checkpoints"
    prepare_checkpoint_dir(folder, "abc")
    make_checkpoint(folder, 10)
    (folder / FINGERPRINT_FILE).write_text('{"fingerpr')
    assert prepare_checkpoint_dir(folder, "abc") is None
    assert not list(folder.glob("checkpoint-*"))


def test_the_fingerprint_changes_with_the_package_code_and_the_library_versions(tmp_path, monkeypatch):
    from mlbert import checkpoints

    data = tmp_path / "data"
    data.mkdir()
    (data / "x.arrow").write_bytes(b"encoded")
    code = tmp_path / "code"
    code.mkdir()
    (code / "losses.py").write_text("LOSS = 1\n")
    monkeypatch.setattr(checkpoints, "PACKAGE_DIR", code)
    before = checkpoints.run_fingerprint({"train": {"seed": 1}}, data)
    (code / "losses.py").write_text("LOSS = 2\n")  # a fix to the loss
    after_code = checkpoints.run_fingerprint({"train": {"seed": 1}}, data)
    monkeypatch.setattr(checkpoints, "FINGERPRINTED_LIBRARIES", ("torch", "no-such-library-installed"))
    after_versions = checkpoints.run_fingerprint({"train": {"seed": 1}}, data)
    assert len({before, after_code, after_versions}) == 3


def test_no_complete_checkpoint_means_start_afresh(tmp_path):
    make_checkpoint(tmp_path, 5, complete=False)
    assert last_complete_checkpoint(tmp_path) is None


def test_trainer_metrics_include_the_mean_of_the_three_headline_scores():
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    logits = np.array([[2.0, -2.0], [-2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]])
    scores = compute_trainer_metrics(["a", "b"], 0.5)(EvalPrediction(predictions=logits, label_ids=labels))
    assert scores["headline_mean"] == pytest.approx((scores["jaccard"] + scores["f1_micro"] + scores["f1_macro"]) / 3)


def test_the_epoch_kept_is_read_from_the_selection_metric():
    state = SimpleNamespace(
        best_metric=0.61,
        log_history=[{"epoch": 1.0, "eval_headline_mean": 0.55, "eval_f1_micro": 0.61}, {"epoch": 2.0, "eval_headline_mean": 0.61}],
    )
    assert best_epoch(state, "headline_mean") == 2.0
    assert best_epoch(state, "f1_micro") == 1.0


@pytest.mark.parametrize("metric", ["headline_mean", "f1_macro"])
def test_the_selection_metric_becomes_metric_for_best_model(tmp_path, metric):
    params = params_from_dict({"train": {"select_epoch_by": metric}}).train
    assert build_training_arguments(params, tmp_path).metric_for_best_model == metric


def test_the_best_epochs_are_ranked_by_the_selection_metric_earliest_first_on_ties():
    state = SimpleNamespace(
        log_history=[
            {"epoch": 1.0, "step": 10, "eval_headline_mean": 0.50},
            {"loss": 0.3, "step": 15},
            {"epoch": 2.0, "step": 20, "eval_headline_mean": 0.61},
            {"epoch": 3.0, "step": 30, "eval_headline_mean": 0.58},
            {"epoch": 4.0, "step": 40, "eval_headline_mean": 0.61},
        ]
    )
    assert [entry["step"] for entry in top_epochs(state, "headline_mean", 3)] == [20, 40, 30]


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
    # Validation refuses this combination; built directly, the arguments must still keep every epoch.
    params = params_from_dict({"train": {"average_top_epochs": 3}}).train
    limited = dataclasses.replace(params, training_args={**params.training_args, "save_total_limit": 2})
    assert build_training_arguments(limited, tmp_path).save_total_limit is None


def test_without_averaging_a_save_total_limit_is_kept(tmp_path):
    params = params_from_dict({"train": {"average_top_epochs": 1, "save_total_limit": 2}}).train
    assert build_training_arguments(params, tmp_path).save_total_limit == 2


@pytest.fixture
def tiny_trainer(tmp_path):
    """A MultiLabelTrainer around a tiny random BERT with three labels, a pos_weight and a
    label-correlation share, and one batch of two texts."""
    import torch
    from tiny_models import tiny_config
    from transformers import BertForSequenceClassification, TrainingArguments

    from mlbert.trainer import multilabel_trainer_class

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(num_labels=3, problem_type="multi_label_classification")).eval()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    pos_weight = torch.tensor([1.0, 4.0, 0.5])
    trainer = multilabel_trainer_class()(model=model, args=args, pos_weight=pos_weight, correlation_weight=0.3)
    batch = {
        "input_ids": torch.tensor([[101, 2023, 2003, 102], [101, 7592, 102, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        "labels": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    }
    return trainer, model, batch


def test_the_training_loss_is_the_multilabel_loss_of_the_model_logits(tiny_trainer):
    import torch

    from mlbert.losses import multilabel_loss

    trainer, model, batch = tiny_trainer
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        expected = multilabel_loss(logits, batch["labels"], torch.tensor([1.0, 4.0, 0.5]), 0.3)
        loss = trainer.compute_loss(model, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_train_loss_asymmetric_puts_the_asl_settings_into_the_trainer_loss(tiny_trainer):
    import torch

    from mlbert.fine_tune import loss_focusing
    from mlbert.losses import AsymmetricFocusing, multilabel_loss
    from mlbert.params import params_from_dict

    assert loss_focusing(params_from_dict({})) is None
    focusing = loss_focusing(params_from_dict({"train": {"loss": "asymmetric", "asymmetric_gamma_negative": 2}}))
    assert focusing == AsymmetricFocusing(gamma_negative=2.0, gamma_positive=0.0, clip=0.05)
    trainer, model, batch = tiny_trainer
    trainer.focusing = focusing
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        expected = multilabel_loss(logits, batch["labels"], torch.tensor([1.0, 4.0, 0.5]), 0.3, focusing)
        loss = trainer.compute_loss(model, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() != pytest.approx(multilabel_loss(logits, batch["labels"], torch.tensor([1.0, 4.0, 0.5]), 0.3).item())


def test_the_loss_returns_the_model_outputs_when_asked(tiny_trainer):
    import torch

    trainer, model, batch = tiny_trainer
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(outputs.logits, logits)
    assert loss.ndim == 0


def test_labels_are_not_passed_to_the_model(tiny_trainer):
    import torch

    trainer, model, batch = tiny_trainer
    with torch.no_grad():
        _, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    # Given labels, BertForSequenceClassification computes its own (plain BCE) loss.
    assert outputs.loss is None
    assert "labels" in batch  # the caller's batch keeps them


@pytest.mark.parametrize("bf16", [True, False])
def test_the_precision_decided_after_the_probe_is_the_one_the_trainer_runs(tmp_path, bf16):
    # TrainingArguments derives its mixed precision when built: the decision must be built in,
    # not set on the arguments afterwards (which would leave training in fp32).
    params = params_from_dict({"train": {"bf16": "auto"}}).train
    args = build_training_arguments(params, tmp_path, bf16=bf16)
    assert args.bf16 is bf16 and args.mixed_precision == ("bf16" if bf16 else "no")


# train.layer_lr_decay


def test_each_layer_below_trains_at_decay_times_the_rate_above_and_weight_decay_skips_biases(tokenizer):
    from mlbert.modeling import layer_depths
    from mlbert.trainer import layer_lr_scales, scaled_parameter_groups

    model = tiny_classifier("label_aware", tokenizer)
    decayed = {name for name, _ in model.named_parameters() if name.endswith("weight") and "LayerNorm" not in name}
    scales = layer_lr_scales(layer_depths(model, "tiny"), 0.5)
    groups = scaled_parameter_groups(model.named_parameters(), scales, 1e-4, 0.01, decayed)
    rate_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert rate_of[id(named["scorer.weight"])] == (1e-4, 0.01)
    assert rate_of[id(named["scorer.bias"])] == (1e-4, 0.0)
    assert rate_of[id(named["encoder.encoder.layer.1.attention.self.query.weight"])] == (5e-5, 0.01)
    assert rate_of[id(named["encoder.encoder.layer.0.output.LayerNorm.weight"])] == (2.5e-5, 0.0)
    assert rate_of[id(named["encoder.embeddings.word_embeddings.weight"])] == (1.25e-5, 0.01)
    assert len(rate_of) == sum(1 for p in model.parameters())  # every parameter, once


def test_frozen_parameters_get_no_group(tokenizer):
    from mlbert.modeling import freeze_bottom_layers, layer_depths
    from mlbert.trainer import layer_lr_scales, scaled_parameter_groups

    model = tiny_classifier("label_aware", tokenizer)
    freeze_bottom_layers(model, 1, "tiny")
    groups = scaled_parameter_groups(model.named_parameters(), layer_lr_scales(layer_depths(model, "tiny"), 0.9), 1e-4, 0.0, set())
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)
    assert max(g["lr"] for g in groups) == 1e-4 and min(g["lr"] for g in groups) == pytest.approx(9e-5)


def test_the_trainer_optimizer_carries_the_layerwise_rates_and_the_scheduler_keeps_their_ratios(tmp_path, tokenizer):
    from transformers import TrainingArguments

    from mlbert.modeling import layer_depths
    from mlbert.trainer import layer_lr_scales, multilabel_trainer_class

    model = tiny_classifier("label_aware", tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, learning_rate=1e-4, warmup_steps=2)
    scales = layer_lr_scales(layer_depths(model, "tiny"), 0.5)
    trainer = multilabel_trainer_class()(model=model, args=args, lr_scales=scales)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    rates = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})  # before warm-up
    assert rates == [pytest.approx(1e-4 * 0.5**depth) for depth in (3, 2, 1, 0)]
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    stepped = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert stepped[-1] == pytest.approx(0.5e-4)  # warm-up: half way after one of two steps
    assert sorted({round(rate / stepped[-1], 9) for rate in stepped}) == [0.125, 0.25, 0.5, 1.0]


def test_without_decay_the_trainer_builds_its_own_two_groups(tmp_path, tokenizer):
    from transformers import TrainingArguments

    from mlbert.trainer import multilabel_trainer_class

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = multilabel_trainer_class()(model=tiny_classifier("label_aware", tokenizer), args=args)
    trainer.create_optimizer()
    assert len(trainer.optimizer.param_groups) == 2


def test_an_optimizer_that_builds_its_own_groups_is_refused_with_the_param_named(tmp_path, tokenizer):
    from transformers import TrainingArguments

    from mlbert.modeling import layer_depths
    from mlbert.trainer import layer_lr_scales, multilabel_trainer_class

    model = tiny_classifier("label_aware", tokenizer)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, optim="adamw_torch")
    scales = layer_lr_scales(layer_depths(model, "tiny"), 0.9)
    trainer = multilabel_trainer_class()(model=model, args=args, lr_scales=scales)
    trainer.get_optimizer_cls_and_kwargs = lambda args, model: (object, {})  # a factory, as for Muon
    with pytest.raises(ParamsError, match="train.layer_lr_decay needs an optimizer that takes parameter groups"):
        trainer.create_optimizer()


@pytest.mark.parametrize("value", [0, -0.5, 1.5])
def test_a_layer_lr_decay_outside_0_to_1_is_a_params_error(value):
    with pytest.raises(ParamsError, match="train.layer_lr_decay must be"):
        params_from_dict({"train": {"layer_lr_decay": value}})


def test_layer_lr_decay_of_one_and_below_is_accepted():
    assert params_from_dict({"train": {"layer_lr_decay": 1.0}}).train.layer_lr_decay == 1.0
    assert params_from_dict({"train": {"layer_lr_decay": 0.8}}).train.layer_lr_decay == 0.8

