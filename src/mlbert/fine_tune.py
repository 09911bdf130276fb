"""The train stage's work: fine-tune the encoder with the Trainer and save the kept model.

One process, or each worker under torchrun: every process trains, only the main one writes.
The kept model is the best epoch by `train.select_epoch_by` on validation or, with
`train.average_top_epochs: k`, the weight average of the k best epochs' checkpoints.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from typing import Any

from .bf16 import PROBE_STEPS, choose_bf16, gpu_bf16, machine_summary, probe_bf16
from .checkpoints import (
    best_epoch,
    checkpoint_folders,
    load_averaged_checkpoints,
    prepare_checkpoint_dir,
    run_fingerprint,
    top_epochs,
)
from .label_aware import save_label_aware_config
from .labels import read_label_list
from .losses import AsymmetricFocusing, positive_class_weights
from .modeling import (
    check_label_segment_fits,
    freeze_bottom_layers,
    layer_depths,
    load_classifier_for_training,
    load_tokenizer,
    model_source,
)
from .normalise import CONFIG_KEY as NORMALISE_KEY
from .normalise import read_recorded
from .outputs import STAGING_SUFFIX, replace_path
from .params import Params
from .paths import CHECKPOINT_DIR, LIVE_DIR, NORMALISE_NAME, TOKENIZED_DIR, TRAINED_DIR, TRAINING_PARAMS_NAME
from .trainer import build_training_arguments, compute_trainer_metrics, layer_lr_scales, multilabel_trainer_class
from .trial_pruning import pruning_callbacks

# One fixed name (not a random one): under torchrun every process saves into the same folder.
STAGING_DIR = TRAINED_DIR.with_name(f".{TRAINED_DIR.name}{STAGING_SUFFIX}")
SELECTION_THRESHOLD = 0.5  # epochs are ranked before any threshold is tuned
TRAINING_GROUPS = ("model", "tokenize", "train", "launch")  # what decides the trained model


def training_params(params: Params) -> dict[str, Any]:
    """The param groups that decide what training produces, as plain data: fingerprinted for
    resuming and saved beside the weights for the model card."""
    return {name: asdict(getattr(params, name)) for name in TRAINING_GROUPS}


def fine_tune(params: Params) -> str | None:
    """Train, then (main process only) write TRAINED_DIR and the dvclive summary; returns the
    one-line summary, or None in a worker that is not the main process."""
    from datasets import load_from_disk
    from transformers import DataCollatorWithPadding, set_seed

    source = model_source(params.model)
    args = build_training_arguments(params.train, CHECKPOINT_DIR)
    is_main = args.process_index == 0
    labels = read_label_list(TOKENIZED_DIR)
    normalisation = read_recorded(TOKENIZED_DIR / NORMALISE_NAME)  # what tokenize did to the texts
    tokenizer = load_tokenizer(source, params.tokenize.max_length)
    fingerprint = run_fingerprint(training_params(params), TOKENIZED_DIR)
    with args.main_process_first(desc="loading data and checkpoints"):
        data = load_from_disk(str(TOKENIZED_DIR))
        resume_from = prepare_checkpoint_dir(CHECKPOINT_DIR, fingerprint)
    if resume_from and is_main:
        print(f"train: resuming from {resume_from}")

    set_seed(args.seed)  # before the model exists: the new head's initial weights depend on it
    model = load_classifier_for_training(source, labels, params.model.head, tokenizer)
    trainable, total = freeze_bottom_layers(model, params.train.freeze_layers, source.name)
    if params.train.freeze_layers and is_main:
        print(
            f"train: the embeddings and the first {params.train.freeze_layers} encoder layer(s) frozen: "
            f"{trainable / 1e6:.1f}M of {total / 1e6:.1f}M parameters train"
        )
    decay = params.train.layer_lr_decay
    lr_scales = layer_lr_scales(layer_depths(model, source.name), decay) if decay < 1.0 else None
    if lr_scales and is_main:
        print(
            f"train: layer-wise learning rates: head {args.learning_rate:.3g}, each layer below x{decay:g}, "
            f"embeddings {args.learning_rate * min(lr_scales.values()):.3g}"
        )
    collator = DataCollatorWithPadding(tokenizer)
    probe = {}
    if params.train.bf16 == "auto" and gpu_bf16() is None:
        args, probe = _probe_precision(params, model, collator, data["train"], args)
    # The model carries its normalisation in config.json: every loader applies the same to its texts.
    setattr(model.config, NORMALISE_KEY, normalisation)
    check_label_segment_fits(model, params.tokenize.max_length, source.name)
    live = _live(resume_from is not None) if is_main else None
    trainer = multilabel_trainer_class()(
        pos_weight=_pos_weight(params, data, labels, is_main),
        correlation_weight=params.train.label_correlation_weight,
        focusing=loss_focusing(params),
        lr_scales=lr_scales,
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_trainer_metrics(labels, SELECTION_THRESHOLD),
        callbacks=([_dvclive_callback(live)] if is_main else []) + pruning_callbacks(),
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    averaged = _average_best_epochs(trainer, params, data["validation"])

    if is_main:
        shutil.rmtree(STAGING_DIR, ignore_errors=True)
    try:
        trainer.save_model(str(STAGING_DIR))  # every process takes part; only the main one writes
        trainer.accelerator.wait_for_everyone()
        if not is_main:
            return None
        if params.model.head == "label_aware":
            save_label_aware_config(model, STAGING_DIR)
        (STAGING_DIR / TRAINING_PARAMS_NAME).write_text(
            json.dumps({**training_params(params), "normalise": normalisation}, indent=2, default=str) + "\n",
            encoding="utf-8",
        )
    except BaseException:
        if is_main:
            shutil.rmtree(STAGING_DIR, ignore_errors=True)
        raise
    metric = params.train.select_epoch_by
    effective_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    epoch = best_epoch(trainer.state, metric)
    ran_bf16 = args.mixed_precision == "bf16"  # what the Trainer ran, not only what was asked
    live.summary.update(
        {
            "best_epoch": epoch,
            f"best_validation_{metric}": trainer.state.best_metric,
            "train_runtime_s": result.metrics["train_runtime"],
            "bf16": ran_bf16,
            **({"bf16_probe": probe} if probe else {}),
            "machine": machine_summary(),
            "num_processes": args.world_size,
            "effective_batch_size": effective_batch,
            **averaged,
        }
    )
    live.make_summary()
    replace_path(STAGING_DIR, TRAINED_DIR)
    shutil.rmtree(CHECKPOINT_DIR)
    average = (
        f", average of epochs {averaged['averaged_epochs']}: {averaged[f'averaged_validation_{metric}']:.4f}"
        if averaged
        else ""
    )
    return (
        f"best epoch {epoch} of {args.num_train_epochs:g}, validation {metric} {trainer.state.best_metric:.4f}{average}, "
        f"{args.world_size} process(es), effective batch {effective_batch}, bf16 {ran_bf16} -> {TRAINED_DIR}"
    )


def _probe_precision(params: Params, model: Any, collator: Any, train: Any, args: Any) -> tuple[Any, dict[str, Any]]:
    """`train.bf16: auto` on a CPU: time both precisions on one real training batch and return
    the TrainingArguments with the faster one, and the measurement. Under torchrun every
    process probes (they share the machine as in training) and all follow the main process."""
    import torch

    rows = train.select(range(min(len(train), args.per_device_train_batch_size)))
    batch = collator([{key: row[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in row} for row in rows])
    probe = probe_bf16(model, dict(batch))
    bf16 = choose_bf16(probe["fp32_samples_per_s"], probe["bf16_samples_per_s"])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        decision = [bf16]
        torch.distributed.broadcast_object_list(decision, src=0)
        bf16 = decision[0]
    if args.process_index == 0:
        print(
            f"train: bf16 auto: fp32 {probe['fp32_samples_per_s']:.1f} samples/s, bf16 autocast "
            f"{probe['bf16_samples_per_s']:.1f} -> {'bf16' if bf16 else 'fp32'}"
            + (f" (probe cut short after {probe['timed_steps']} timed steps: bf16 hopelessly slow)" if probe["timed_steps"] < PROBE_STEPS else "")
        )
    if bf16 != args.bf16:
        args = build_training_arguments(params.train, CHECKPOINT_DIR, bf16=bf16)
    return args, probe


def _live(resume: bool) -> Any:
    from dvclive import Live

    return Live(str(LIVE_DIR), resume=resume, dvcyaml=False, save_dvc_exp=False)


def _dvclive_callback(live: Any) -> Any:
    from transformers.integrations import DVCLiveCallback

    return DVCLiveCallback(live=live)


def _pos_weight(params: Params, data: Any, labels: list[str], is_main: bool) -> Any:
    """BCE pos_weight from the training split's label frequencies, or None when not asked for."""
    if not params.train.pos_weight:
        return None
    import numpy as np
    import torch

    weights = positive_class_weights(np.asarray(data["train"]["labels"]), params.train.pos_weight_cap)
    if is_main:
        print("train: pos_weight " + ", ".join(f"{n} {w:.2f}" for n, w in zip(labels, weights)))
    return torch.tensor(weights)


def loss_focusing(params: Params) -> AsymmetricFocusing | None:
    """ASL's settings when `train.loss` is asymmetric; None keeps BCE."""
    train = params.train
    if train.loss != "asymmetric":
        return None
    return AsymmetricFocusing(train.asymmetric_gamma_negative, train.asymmetric_gamma_positive, train.asymmetric_clip)


def _average_best_epochs(trainer: Any, params: Params, validation: Any) -> dict[str, Any]:
    """With `average_top_epochs` > 1, put the mean weights of the best epochs into the trainer's
    model and score them on validation; returns what the summary records (empty otherwise)."""
    metric, count = params.train.select_epoch_by, params.train.average_top_epochs
    if count <= 1:
        return {}
    # Neighbouring good epochs sit in one basin; their mean generalises better than any one.
    best = top_epochs(trainer.state, metric, count)
    load_averaged_checkpoints(trainer.model, checkpoint_folders(best, CHECKPOINT_DIR))
    scores = trainer.predict(validation, metric_key_prefix="averaged").metrics
    return {
        "averaged_epochs": ", ".join(f"{entry['epoch']:g}" for entry in best),
        f"averaged_validation_{metric}": scores[f"averaged_{metric}"],
    }
