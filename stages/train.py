"""train: fine-tune the encoder with a multi-label head using the Hugging Face Trainer.

Evaluates on validation each epoch and keeps the best epoch by `train.select_epoch_by`, or, with
`train.average_top_epochs: k`, the weight average of the k best epochs. Checkpoints go to
checkpoints/ (persistent, not cached): rerunning an interrupted `dvc repro` resumes from the last
one. Outputs: models/trained (weights, config with label maps, tokenizer), dvclive/ (curves).

    python stages/train.py                                   # what `dvc repro` runs
    launch.num_processes: 2 in params.yaml                   # the same, data-parallel, via torchrun
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host:29500 stages/train.py
"""

import json
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from mlbert.launch import torchrun_command
from mlbert.label_aware import check_label_segment_fits, save_label_aware_config
from mlbert.losses import positive_class_weights
from mlbert.modeling import load_classifier_for_training, load_tokenizer, model_source
from mlbert.outputs import replace_dir
from mlbert.params import Params, load_params
from mlbert.stage import run_stage
from mlbert.training import (
    best_epoch,
    build_training_arguments,
    checkpoint_folders,
    compute_trainer_metrics,
    load_averaged_checkpoints,
    multilabel_trainer_class,
    prepare_checkpoint_dir,
    run_fingerprint,
    top_epochs,
)

DATA_DIR = Path("data/tokenized")
CHECKPOINT_DIR = Path("checkpoints")
LIVE_DIR = "dvclive"
OUTPUT_DIR = Path("models/trained")
STAGING_DIR = Path("models/.trained.partial")
SELECTION_THRESHOLD = 0.5


def main() -> str | None:
    params = load_params()
    command = torchrun_command(sys.argv[0], params.launch.num_processes)
    if command is None:
        return train(params)
    print(f"train: {' '.join(command)}")
    sys.exit(subprocess.run(command).returncode)  # each worker prints and writes as in train()


def train(params: Params) -> str | None:
    """Train in this process; under torchrun, every worker runs this and the main one writes."""
    import numpy as np
    import torch
    from datasets import load_from_disk
    from dvclive import Live
    from transformers import DataCollatorWithPadding, set_seed
    from transformers.integrations import DVCLiveCallback

    source = model_source(params.model)
    args = build_training_arguments(params.train, CHECKPOINT_DIR)
    is_main = args.process_index == 0
    labels = json.loads((DATA_DIR / "labels.json").read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(source, params.tokenize.max_length)
    fingerprint = run_fingerprint(
        {name: asdict(getattr(params, name)) for name in ("model", "tokenize", "train", "launch")}, DATA_DIR
    )
    with args.main_process_first(desc="loading data and checkpoints"):
        data = load_from_disk(str(DATA_DIR))
        resume_from = prepare_checkpoint_dir(CHECKPOINT_DIR, fingerprint)
    if resume_from and is_main:
        print(f"train: resuming from {resume_from}")

    set_seed(args.seed)  # before the model exists: the new head's initial weights depend on it
    model = load_classifier_for_training(source, labels, params.model.head, tokenizer)
    check_label_segment_fits(model, params.tokenize.max_length, source.name)
    pos_weight = None
    if params.train.pos_weight:
        weights = positive_class_weights(np.asarray(data["train"]["labels"]), params.train.pos_weight_cap)
        pos_weight = torch.tensor(weights)
        if is_main:
            print("train: pos_weight " + ", ".join(f"{n} {w:.2f}" for n, w in zip(labels, weights)))
    live = Live(LIVE_DIR, resume=resume_from is not None, dvcyaml=False, save_dvc_exp=False) if is_main else None
    trainer = multilabel_trainer_class()(
        pos_weight=pos_weight,
        correlation_weight=params.train.label_correlation_weight,
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_trainer_metrics(labels, SELECTION_THRESHOLD),
        callbacks=[DVCLiveCallback(live=live)] if is_main else [],
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    metric, averaged = params.train.select_epoch_by, {}
    if params.train.average_top_epochs > 1:
        # Neighbouring good epochs sit in one basin; their mean generalises better than any one.
        best = top_epochs(trainer.state, metric, params.train.average_top_epochs)
        load_averaged_checkpoints(trainer.model, checkpoint_folders(best, CHECKPOINT_DIR))
        scores = trainer.predict(data["validation"], metric_key_prefix="averaged").metrics
        averaged = {
            "averaged_epochs": ", ".join(f"{entry['epoch']:g}" for entry in best),
            f"averaged_validation_{metric}": scores[f"averaged_{metric}"],
        }
    if is_main:
        shutil.rmtree(STAGING_DIR, ignore_errors=True)
    trainer.save_model(str(STAGING_DIR))  # every process takes part; only the main one writes
    trainer.accelerator.wait_for_everyone()
    if not is_main:
        return None
    if params.model.head == "label_aware":
        save_label_aware_config(model, STAGING_DIR)

    effective_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    epoch = best_epoch(trainer.state, metric)
    live.summary.update(
        {
            "best_epoch": epoch,
            f"best_validation_{metric}": trainer.state.best_metric,
            "train_runtime_s": result.metrics["train_runtime"],
            "bf16": args.bf16,
            "num_processes": args.world_size,
            "effective_batch_size": effective_batch,
            **averaged,
        }
    )
    live.make_summary()
    replace_dir(STAGING_DIR, OUTPUT_DIR)
    shutil.rmtree(CHECKPOINT_DIR)
    average = (
        f", average of epochs {averaged['averaged_epochs']}: {averaged[f'averaged_validation_{metric}']:.4f}"
        if averaged
        else ""
    )
    return (
        f"best epoch {epoch} of {args.num_train_epochs:g}, validation {metric} {trainer.state.best_metric:.4f}{average}, "
        f"{args.world_size} process(es), effective batch {effective_batch}, bf16 {args.bf16} -> {OUTPUT_DIR}"
    )


if __name__ == "__main__":
    run_stage("train", main)
