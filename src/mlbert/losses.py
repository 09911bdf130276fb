"""Multi-label losses: BCE-with-logits with optional positive-class weights, plus SpanEmo's
label-correlation term."""

from __future__ import annotations

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


def multilabel_loss(logits: Any, labels: Any, pos_weight: Any | None = None, correlation_weight: float = 0.0) -> Any:
    """(1 - w) * BCE-with-logits (mean over labels and examples) + w * label-correlation loss."""
    import torch

    logits = logits.float()
    labels = labels.to(logits.dtype)
    weight = None if pos_weight is None else pos_weight.to(logits.device, logits.dtype)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)
    if correlation_weight:
        loss = (1.0 - correlation_weight) * loss + correlation_weight * label_correlation_loss(logits, labels)
    return loss
