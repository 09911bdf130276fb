"""Multi-label losses: BCE-with-logits with optional positive-class weights, or the asymmetric
loss (ASL), plus SpanEmo's label-correlation term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def positive_class_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    """Per label: negatives / positives in `labels` (rows x labels, 0/1), at most `cap`.

    A label with no positives gets `cap`. Weights below 1 (labels on for most rows) are kept:
    they balance the loss the other way.
    """
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    with np.errstate(divide="ignore"):
        ratio = np.where(positives > 0, negatives / np.maximum(positives, 1), cap)
    return np.minimum(ratio, cap).astype(np.float32)


def label_correlation_loss(logits: Any, labels: Any) -> Any:
    """SpanEmo's label-correlation loss: for each example, the mean over (positive p, negative q)
    label pairs of exp(prob_q - prob_p), which pushes every present label above every absent one.
    Examples with no positive or no negative label do not contribute."""
    import torch

    probabilities = torch.sigmoid(logits.float())
    positive = labels > 0.5
    # pairs[b, i, j]: label i on and label j off in example b
    pairs = positive.unsqueeze(2) & ~positive.unsqueeze(1)
    gaps = probabilities.unsqueeze(1) - probabilities.unsqueeze(2)  # [b, i, j] = prob_j - prob_i
    counts = pairs.sum(dim=(1, 2))
    per_example = (torch.exp(gaps) * pairs).sum(dim=(1, 2)) / counts.clamp(min=1)
    used = counts > 0
    return per_example[used].mean() if bool(used.any()) else probabilities.sum() * 0.0


@dataclass(frozen=True)
class AsymmetricFocusing:
    """The asymmetric loss's settings (Ridnik et al., 2021, "Asymmetric Loss For Multi-Label
    Classification"). With every field 0 the loss is BCE."""

    gamma_negative: float = 4.0  # an absent label's term is scaled by p_m ** gamma_negative ...
    gamma_positive: float = 0.0  # ... a present label's by (1 - p) ** gamma_positive
    clip: float = 0.05  # p_m = max(p - clip, 0): an absent label below `clip` costs nothing


def asymmetric_loss(logits: Any, labels: Any, focusing: AsymmetricFocusing, pos_weight: Any | None = None) -> Any:
    """Mean over labels and examples of ASL: -y (1-p)^g+ log p - (1-y) p_m^g- log(1 - p_m).

    Most absent labels are easy (p near 0); focusing and the clip shrink their share of the loss,
    so the few positives of rare labels weigh more without a fixed per-label weight. `pos_weight`
    scales the positive terms as in BCE."""
    import torch

    probabilities = torch.sigmoid(logits)
    positive = torch.nn.functional.logsigmoid(logits)
    if focusing.gamma_positive:
        positive = positive * (1.0 - probabilities) ** focusing.gamma_positive
    if pos_weight is not None:
        positive = positive * pos_weight
    if focusing.clip:
        shifted = (probabilities - focusing.clip).clamp(min=0.0)
        # 1 - p_m >= clip > 0, so the log is finite; logsigmoid(-x) keeps precision when clip is 0
        negative = torch.log((1.0 - shifted).clamp(min=focusing.clip))
    else:
        shifted = probabilities
        negative = torch.nn.functional.logsigmoid(-logits)
    if focusing.gamma_negative:
        negative = negative * shifted**focusing.gamma_negative
    return -(labels * positive + (1.0 - labels) * negative).mean()


def multilabel_loss(
    logits: Any,
    labels: Any,
    pos_weight: Any | None = None,
    correlation_weight: float = 0.0,
    focusing: AsymmetricFocusing | None = None,
) -> Any:
    """(1 - w) * BCE-with-logits, or ASL with `focusing` (mean over labels and examples),
    + w * label-correlation loss."""
    import torch

    logits = logits.float()
    labels = labels.to(logits.dtype)
    weight = None if pos_weight is None else pos_weight.to(logits.device, logits.dtype)
    if focusing is None:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)
    else:
        loss = asymmetric_loss(logits, labels, focusing, weight)
    if correlation_weight:
        loss = (1.0 - correlation_weight) * loss + correlation_weight * label_correlation_loss(logits, labels)
    return loss
