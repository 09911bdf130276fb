"""Turning texts into label probabilities and label sets, for evaluate, export and `predict`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS_FILE = "thresholds.json"


def predict_probabilities(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Sigmoid probabilities, shape (len(texts), num_labels), in the order of `texts`.

    Texts are batched by token length so that per-batch padding stays short; truncation uses the
    tokenizer's `model_max_length`, which the train stage sets to `tokenize.max_length`.
    """
    import torch
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts), truncation=True)["input_ids"]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    probabilities = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    batches = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in tqdm(batches, desc="predict", unit="batch", disable=not progress):
            rows = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            batch = {key: value.to(device) for key, value in batch.items()}
            logits = model(**batch).logits.float()
            probabilities[rows] = torch.sigmoid(logits).cpu().numpy()
    return probabilities


@dataclass
class Classifier:
    """An exported model folder, ready to label texts."""

    model: Any
    tokenizer: Any
    labels: list[str]
    thresholds: np.ndarray

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return predict_probabilities(self.model, self.tokenizer, texts, batch_size, progress)

    def predict(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> list[dict]:
        """For each text: the labels at or above their threshold and every label's probability."""
        probabilities = self.predict_proba(texts, batch_size, progress)
        return [
            {
                "labels": [label for label, p, t in zip(self.labels, row, self.thresholds) if p >= t],
                "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row)},
            }
            for row in probabilities
        ]


def load_classifier(folder: str | Path) -> Classifier:
    """Load an exported folder (or a trained model folder, with the 0.5 rule)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .label_aware import is_label_aware, load_label_aware

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json); run `dvc repro` first")
    config = AutoConfig.from_pretrained(folder)
    if is_label_aware(config):
        model = load_label_aware(folder, config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, config=config, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return Classifier(model, tokenizer, labels, read_thresholds(folder, labels))


def read_thresholds(folder: Path, labels: Sequence[str]) -> np.ndarray:
    """Per-label decision thresholds from `thresholds.json`; 0.5 for every label if absent."""
    path = folder / THRESHOLDS_FILE
    if not path.is_file():
        return np.full(len(labels), 0.5, dtype=np.float32)
    saved = json.loads(path.read_text(encoding="utf-8"))
    per_label = saved.get("per_label", {})
    return np.array([per_label.get(label, saved["default"]) for label in labels], dtype=np.float32)
