"""train: fine-tune the encoder with a multi-label head using the Hugging Face Trainer.

Evaluates on validation each epoch and keeps the best epoch by micro-F1. Checkpoints go to
checkpoints/ (persistent, not cached): rerunning an interrupted `dvc repro` resumes from the last
one. Outputs: models/trained (weights, config with label maps, tokenizer), dvclive/ (curves).
"""

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from mlbert.modeling import load_classifier_for_training, load_tokenizer, model_source
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.stage import run_stage
from mlbert.training import (
    best_epoch,
    build_training_arguments,
    compute_trainer_metrics,
    prepare_checkpoint_dir,
    run_fingerprint,
)

DATA_DIR = Path("data/tokenized")
CHECKPOINT_DIR = Path("checkpoints")
LIVE_DIR = "dvclive"
OUTPUT_DIR = "models/trained"
SELECTION_THRESHOLD = 0.5


def main() -> str:
    from datasets import load_from_disk
    from dvclive import Live
    from transformers import DataCollatorWithPadding, Trainer, set_seed
    from transformers.integrations import DVCLiveCallback

    params = load_params()
    source = model_source(params.model)
    args = build_training_arguments(params.train, CHECKPOINT_DIR)
    labels = json.loads((DATA_DIR / "labels.json").read_text(encoding="utf-8"))
    data = load_from_disk(str(DATA_DIR))
    tokenizer = load_tokenizer(source, params.tokenize.max_length)
    fingerprint = run_fingerprint(
        {"model": asdict(params.model), "tokenize": asdict(params.tokenize), "train": asdict(params.train)},
        DATA_DIR,
    )
    resume_from = prepare_checkpoint_dir(CHECKPOINT_DIR, fingerprint)
    if resume_from:
        print(f"train: resuming from {resume_from}")

    set_seed(args.seed)  # before the model exists: the new head's initial weights depend on it
    live = Live(LIVE_DIR, resume=resume_from is not None, dvcyaml=False, save_dvc_exp=False)
    trainer = Trainer(
        model=load_classifier_for_training(source, labels),
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_trainer_metrics(labels, SELECTION_THRESHOLD),
        callbacks=[DVCLiveCallback(live=live)],
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    epoch = best_epoch(trainer.state)
    live.summary.update(
        {
            "best_epoch": epoch,
            "best_validation_f1_micro": trainer.state.best_metric,
            "train_runtime_s": result.metrics["train_runtime"],
            "bf16": args.bf16,
        }
    )
    live.make_summary()
    with atomic_dir(OUTPUT_DIR) as staging:
        trainer.save_model(str(staging))
    shutil.rmtree(CHECKPOINT_DIR)
    return (
        f"best epoch {epoch} of {args.num_train_epochs:g}, validation micro-F1 "
        f"{trainer.state.best_metric:.4f}, bf16 {args.bf16} -> {OUTPUT_DIR}"
    )


if __name__ == "__main__":
    run_stage("train", main)
