"""Fine-tuning with the Hugging Face Trainer: arguments, metrics, resumable checkpoints."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import multilabel_metrics
from .params import ParamsError, TrainParams

FINGERPRINT_FILE = "run_fingerprint.json"


def bf16_supported() -> bool:
    """True where bf16 autocast runs natively: a bf16 GPU, or a CPU with AVX-512 BF16 or AMX."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, check, lambda: False)() for check in checks)


def build_training_arguments(params: TrainParams, output_dir: str | Path) -> Any:
    """TrainingArguments from `train:` plus what the pipeline fixes: per-epoch eval and saves,
    best epoch by `train.select_epoch_by` on validation, no reporting integrations (dvclive is added by hand)."""
    from transformers import TrainingArguments

    import torch

    bf16 = bf16_supported() if params.bf16 == "auto" else params.bf16
    args = dict(params.training_args)
    if params.average_top_epochs > 1:
        args["save_total_limit"] = None  # every epoch may be among the best few; removed after training
    if bf16 and not torch.cuda.is_available():
        args.setdefault("use_cpu", True)  # transformers refuses bf16 without a GPU unless told
    # Token-count loss averaging is for language modelling; for a classification loss it only
    # multiplies the loss (and gradients) by the number of processes under torchrun.
    args.setdefault("average_tokens_across_devices", False)
    try:
        return TrainingArguments(
            output_dir=str(output_dir),
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            metric_for_best_model=params.select_epoch_by,
            greater_is_better=True,
            report_to="none",
            bf16=bf16,
            **args,
        )
    except (ValueError, TypeError) as error:
        raise ParamsError(f"train: TrainingArguments rejected the params: {error}") from error


def multilabel_trainer_class() -> type:
    """A Trainer whose loss is `losses.multilabel_loss`: BCE with optional `pos_weight` and
    label-correlation term, for the plain and the label-aware head alike."""
    from transformers import Trainer

    from .losses import multilabel_loss

    class MultiLabelTrainer(Trainer):
        # The loss is a per-batch mean: the Trainer divides it by the gradient accumulation steps.
        loss_is_scaled_for_ga = False

        def __init__(self, *args: Any, pos_weight: Any = None, correlation_weight: float = 0.0, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.pos_weight = pos_weight
            self.correlation_weight = correlation_weight

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # num_items_in_batch is a token count for language-model losses; a multi-label loss
            # averages over the examples and labels of its batch instead.
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = multilabel_loss(outputs.logits, labels, self.pos_weight, self.correlation_weight)
            return (loss, outputs) if return_outputs else loss

    return MultiLabelTrainer


HEADLINE_METRICS = ("jaccard", "f1_micro", "f1_macro")


def compute_trainer_metrics(label_names: list[str], threshold: float):
    """A Trainer `compute_metrics` that reports the headline scores (not per label) at `threshold`,
    and `score`, their mean: one number for "good on all three at once"."""

    def compute(eval_prediction: Any) -> dict[str, float]:
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        probabilities = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
        scores = multilabel_metrics(labels, probabilities, threshold, label_names)
        kept = {
            key: value
            for key, value in scores.items()
            if key in {*HEADLINE_METRICS, "accuracy", "roc_auc_micro"} and value is not None
        }
        # An undefined F1 (no true and no predicted positives) counts 0: the score must exist
        # for every epoch, or the Trainer cannot rank them.
        kept["score"] = float(np.mean([scores[key] or 0.0 for key in HEADLINE_METRICS]))
        return kept

    return compute


def run_fingerprint(payload: dict[str, Any], data_dir: Path) -> str:
    """A hash of everything that decides what training produces: params and the encoded data."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(data_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_checkpoint_dir(checkpoint_dir: Path, fingerprint: str) -> str | None:
    """Return the checkpoint to resume from, if `checkpoint_dir` holds one from this same run.

    Checkpoints of a run with other params or data are removed: resuming from them would mix
    two experiments.
    """
    marker = checkpoint_dir / FINGERPRINT_FILE
    if checkpoint_dir.is_dir():
        same_run = marker.is_file() and json.loads(marker.read_text())["fingerprint"] == fingerprint
        if same_run:
            return last_complete_checkpoint(checkpoint_dir)
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    return None


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest `checkpoint-<step>` folder that was completely written; half-written ones go.

    The Trainer writes a checkpoint in place and its `trainer_state.json` last, so a process
    killed while saving leaves a folder without it, which must not be resumed from.
    """
    steps = sorted(
        (int(path.name.split("-")[1]), path)
        for path in checkpoint_dir.glob("checkpoint-*")
        if path.is_dir() and path.name.split("-")[1].isdigit()
    )
    for _, path in reversed(steps):
        if (path / "trainer_state.json").is_file():
            return str(path)
        shutil.rmtree(path)
    return None


def top_epochs(state: Any, metric: str, count: int) -> list[dict[str, Any]]:
    """The evaluation log entries of the `count` best epochs by validation `metric`, best first
    (an earlier epoch wins a tie)."""
    evaluations = [entry for entry in state.log_history if f"eval_{metric}" in entry]
    return sorted(evaluations, key=lambda entry: (-entry[f"eval_{metric}"], entry["step"]))[:count]


def checkpoint_folders(entries: list[dict[str, Any]], checkpoint_dir: Path) -> list[Path]:
    """The checkpoint the Trainer saved at each entry's step; all must still be there."""
    folders = [Path(checkpoint_dir) / f"checkpoint-{entry['step']}" for entry in entries]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise FileNotFoundError(f"checkpoints to average are gone: {', '.join(missing)}")
    return folders


def average_weights(state_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of several state dicts of one architecture (float tensors, averaged
    in float32 and cast back); integer buffers such as position ids come from the first."""
    first = state_dicts[0]
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(state[name].float() for state in state_dicts)
            averaged[name] = (total / len(state_dicts)).to(tensor.dtype)
        else:
            averaged[name] = tensor
    return averaged


def load_averaged_checkpoints(model: Any, folders: list[Path]) -> None:
    """Put the average of the weights saved in `folders` (model.safetensors) into `model`."""
    from safetensors.torch import load_file

    averaged = average_weights([load_file(str(folder / "model.safetensors")) for folder in folders])
    result = model.load_state_dict(averaged, strict=False)
    if result.unexpected_keys:
        raise RuntimeError(f"checkpoint weights do not fit the model: {result.unexpected_keys[:5]}")


def best_epoch(state: Any, metric: str) -> float | None:
    """The epoch whose evaluation the Trainer kept as best by `metric`."""
    best = state.best_metric
    for entry in state.log_history:
        if entry.get(f"eval_{metric}") == best:
            return entry.get("epoch")
    return None
