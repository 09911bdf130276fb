"""The Hugging Face Trainer as the pipeline uses it: its arguments, its loss, its metrics."""

from __future__ import annotations

from collections.abc import Collection, Iterable
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


def scaled_parameter_groups(
    named_parameters: Iterable[tuple[str, Any]],
    lr_scales: dict[str, float],
    learning_rate: float,
    weight_decay: float,
    decayed_names: Collection[str],
) -> list[dict[str, Any]]:
    """Optimizer parameter groups in which a parameter trains at learning_rate * its scale in
    `lr_scales` (1 when absent); weight decay applies to `decayed_names` only, as in the Trainer's
    own groups. Frozen parameters are left out. The scheduler scales each group's rate, so
    warm-up and decay keep the ratios."""
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        scale, decayed = lr_scales.get(name, 1.0), name in decayed_names
        group = groups.setdefault(
            (scale, decayed),
            {"params": [], "lr": learning_rate * scale, "weight_decay": weight_decay if decayed else 0.0},
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups, key=lambda key: (-key[0], key[1]))]


def layer_lr_scales(depths: dict[str, int], decay: float) -> dict[str, float]:
    """`train.layer_lr_decay`: a parameter at `depth` below the top (modeling.layer_depths)
    trains at decay ** depth times the learning rate."""
    return {name: decay**depth for name, depth in depths.items()}


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
            lr_scales: dict[str, float] | None = None,
            **kwargs: Any,
        ):
            super().__init__(*args, **kwargs)
            self.pos_weight = pos_weight
            self.correlation_weight = correlation_weight
            self.focusing = focusing
            # Per parameter name, a multiple of the learning rate (train.layer_lr_decay; scaled_parameter_groups).
            self.lr_scales = lr_scales

        def create_optimizer(self, model=None):
            # Without scales the Trainer's own optimizer, untouched: the default run stays bit-identical.
            if self.lr_scales is None or self.optimizer is not None:
                return super().create_optimizer(model)
            import torch

            target = self.model if model is None else model
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, target)
            owns_groups = {"params", "model", "optimizer_dict"} & set(optimizer_kwargs)
            if owns_groups or not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)):
                raise ParamsError(
                    "train.layer_lr_decay needs an optimizer that takes parameter groups; "
                    f"train.optim {self.args.optim} builds its own. Set train.layer_lr_decay: 1.0 or another optim"
                )
            groups = scaled_parameter_groups(
                target.named_parameters(),
                self.lr_scales,
                self.args.learning_rate,
                self.args.weight_decay,
                set(self.get_decay_parameter_names(target)),
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer

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
