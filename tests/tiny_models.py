"""A tiny randomly initialised BERT configuration for tests that need a real model in seconds."""

from __future__ import annotations

from typing import Any


def tiny_config(**overrides: Any) -> Any:
    """Two layers of width 32 over the packaged model's vocabulary (so its tokenizer fits)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128, **overrides,
    )  # fmt: skip


def tiny_classifier(head: str, tokenizer: Any, labels: tuple[str, ...] = ("joy", "fear")) -> Any:
    """A seeded tiny random classifier in memory: the label-aware head over `labels`, or a cls model."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from mlbert.label_aware import build_label_aware

    torch.manual_seed(0)
    if head == "label_aware":
        return build_label_aware(AutoModel.from_config(tiny_config()), tokenizer, list(labels))
    return AutoModelForSequenceClassification.from_config(tiny_config(num_labels=len(labels)))


def write_tiny_classifier_folder(folder: Any, tokenizer: Any, labels: list[str], max_length: int | None = None) -> Any:
    """A trained-model folder as `load()` reads it: a tiny random BertForSequenceClassification
    over `labels` (seeded), the tokenizer (truncating at `max_length` when given, as the train stage
    sets it) and a thresholds.json (0.5, and 0.3 for the second label)."""
    import json

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    config = tiny_config(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if max_length is not None:
        trained = AutoTokenizer.from_pretrained(folder)
        trained.model_max_length = max_length
        trained.save_pretrained(folder)
    (folder / "thresholds.json").write_text(json.dumps({"default": 0.5, "per_label": {labels[1]: 0.3}}), encoding="utf-8")
    return folder


def torch_sees_a_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
