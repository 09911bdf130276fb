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
