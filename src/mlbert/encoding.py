"""Encoding prepared splits into token ids and multi-hot float labels for the Trainer."""

from __future__ import annotations

from typing import Any

from .data import Splits
from .labels import labels_to_multi_hot
from .normalise import normalise_texts
from .params import NormaliseParams


def encode_splits(splits: Splits, tokenizer: Any, normalise: NormaliseParams) -> Any:
    """A DatasetDict with input ids, attention masks and float multi-hot `labels`, from the
    texts as `normalise` rewrites them (what `predict` does to its texts too).

    No padding here: the Trainer's collator pads each batch to its own longest example, and
    truncation follows the tokenizer's `model_max_length` (set to `tokenize.max_length`).
    """
    from datasets import Dataset, DatasetDict

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], truncation=True)

    encoded = {}
    for name, frame in splits.items():
        dataset = Dataset.from_dict(
            {"text": normalise_texts(frame["text"].tolist(), normalise), "labels": labels_to_multi_hot(frame["labels"], splits.labels)}
        )
        encoded[name] = dataset.map(tokenize, batched=True, remove_columns=["text"], desc=f"tokenize {name}")
    return DatasetDict(encoded)


def count_truncated(encoded: Any, max_length: int) -> int:
    """How many encoded texts reached `max_length` tokens (and so were probably cut)."""
    return sum(sum(len(ids) >= max_length for ids in dataset["input_ids"]) for dataset in encoded.values())
