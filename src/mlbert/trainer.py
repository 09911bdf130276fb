"""The Hugging Face Trainer as the pipeline uses it: its arguments, its loss, its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bf16 import gpu_bf16
from .errors import ParamsError
from .metrics import EPOCH_METRICS, headline_mean, multilabel_metrics, sigmoid
from .params import HEADLINE_MEAN, TrainParams


def build_training_arguments(params: TrainParams, output_dir: str | Path, bf16: bool | None = None) -> Any:
    """TrainingArguments from `train:` plus what the pipeline fixes: per-epoch eval and saves,
    best epoch by `train.select_epoch_by` on validation, no reporting integrations (dvclive is added by hand).

    `bf16` overrides `train.bf16` (the train stage passes the CPU probe's decision for `auto`,
    see bf16.py). Left None, `auto` means bf16 on a bf16 GPU and fp32 elsewhere. The arguments
    are built again rather than edited: TrainingArguments derives its mixed precision from
    `bf16` when it is built, so setting `args.bf16` afterwards would train in fp32."""
    import torch
    from transformers import TrainingArguments

    if bf16 is None:
        bf16 = bool(gpu_bf16()) if params.bf16 == "auto" else params.bf16
    args = dict(params.training_args)
    if params.average_top_epochs > 1:
        args["save_total_limit"] = None  # every epoch may be among the best few; removed after training
    if not torch.cuda.is_available():
        # transformers refuses bf16 without a GPU unless told it runs on the CPU; said always, so
        # that the arguments `auto` builds again after its probe set up the same devices (under
        # torchrun, a second build with other device settings loses the distributed run).
        args.setdefault("use_cpu", True)
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
    """A Trainer whose loss is `losses.multilabel_loss`: BCE (or ASL, given `focusing`) with
    optional `pos_weight` and label-correlation term, for the plain and the label-aware head alike.

    Built on call so that importing this module does not import transformers' Trainer."""
    from transformers import Trainer

    from .losses import multilabel_loss

    class MultiLabelTrainer(Trainer):
        # The loss is a per-batch mean: the Trainer divides it by the gradient accumulation steps.
        loss_is_scaled_for_ga = False

        def __init__(
            self,
            *args: Any,
            pos_weight: Any = None,
            correlation_weight: float = 0.0,
            focusing: Any = None,
            **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.pos_weight = pos_weight
            self.correlation_weight = correlation_weight
            self.focusing = focusing

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # num_items_in_batch is a token count for language-model losses; a multi-label loss
            # averages over the examples and labels of its batch instead.
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = multilabel_loss(outputs.logits, labels, self.pos_weight, self.correlation_weight, self.focusing)
            return (loss, outputs) if return_outputs else loss

    return MultiLabelTrainer


def compute_trainer_metrics(label_names: list[str], threshold: float):
    """A Trainer `compute_metrics` that reports the headline scores (not per label) at `threshold`,
    and `headline_mean`, their mean, which can rank the epochs."""

    def compute(eval_prediction: Any) -> dict[str, float]:
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        scores = multilabel_metrics(labels, sigmoid(logits), threshold, label_names)
        kept = {key: value for key, value in scores.items() if key in EPOCH_METRICS and value is not None}
        kept[HEADLINE_MEAN] = headline_mean(scores)
        return kept

    return compute
