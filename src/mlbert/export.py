"""The exported model folder: weights, tokenizer, label maps, thresholds and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from .prediction import THRESHOLDS_FILE

# Trainer leaves training_args.bin (a pickle) beside the weights; a served folder needs none.
EXCLUDED_FILES = {"training_args.bin"}
HEADLINE_METRICS = ("f1_micro", "f1_macro", "jaccard", "accuracy", "roc_auc_micro", "roc_auc_macro")


def write_export(
    model_dir: Path, thresholds_file: Path, out_dir: Path, params: dict[str, Any], metrics: dict[str, Any]
) -> list[str]:
    """Fill `out_dir` with a self-contained model folder; return the file names written."""
    for path in model_dir.iterdir():
        if path.is_file() and path.name not in EXCLUDED_FILES:
            shutil.copy2(path, out_dir / path.name)
    shutil.copy2(thresholds_file, out_dir / THRESHOLDS_FILE)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    (out_dir / "README.md").write_text(model_card(labels, params, metrics), encoding="utf-8")
    return sorted(path.name for path in out_dir.iterdir())


def model_card(labels: list[str], params: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A Hugging Face model card: YAML metadata, how to use it, the params and the scores."""
    metadata = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["multi-label-classification", "mlbert", "dvc"],
        "base_model": params["model"]["name"],
    }
    rows = "\n".join(
        f"| {split} | {metrics[split]['n_examples']} | "
        + " | ".join(_fmt(metrics[split][key]) for key in HEADLINE_METRICS)
        + " |"
        for split in ("validation", "test")
    )
    per_label = "\n".join(
        f"| {label} | {_fmt(s['precision'])} | {_fmt(s['recall'])} | {_fmt(s['f1'])} | {s['support']} |"
        for label, s in metrics["test"]["per_label"].items()
    )
    rule = metrics["thresholds"]
    threshold = (
        f"tuned on validation for {rule['objective']}; global {rule['default']}, per label in `{THRESHOLDS_FILE}`"
        if rule["rule"] == "tuned"
        else f"{rule['default']} for every label"
    )
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# Multi-label text classifier

Fine-tuned from `{params["model"]["name"]}` by the mlbert DVC pipeline. Each text gets every
label whose sigmoid probability reaches its threshold ({threshold}),
so it can get none, one or several of: {", ".join(labels)}.

## Use

```python
from transformers import pipeline

classify = pipeline("text-classification", model="path/to/this/folder", top_k=None)
classify("What a wonderful surprise!")
```

or, applying the exported thresholds, `predict --model path/to/this/folder "some text"`.

## Scores (thresholds {threshold})

| split | n | {" | ".join(HEADLINE_METRICS)} |
|---|---|{"---|" * len(HEADLINE_METRICS)}
{rows}

Per label on test:

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_label}

## Training params

```yaml
{yaml.safe_dump(params, sort_keys=False).strip()}
```
"""


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
