"""The exported model folder: weights, ONNX graphs, the OpenVINO int8 model, tokenizer, label maps,
thresholds, model card, and the parity check that proves every serving backend answers as the
PyTorch model does."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .data import SEMEVAL_HUB_CONFIG, SEMEVAL_HUB_ID, SEMEVAL_NAME
from .errors import ParityError
from .labels import config_labels
from .metrics import CARD_METRICS, HEADLINE_METRICS, format_score, multilabel_metrics
from .normalise import CONFIG_KEY as NORMALISE_KEY
from .normalise import from_dict, normalise_texts
from .onnx_export import (
    INT8_FILE,
    ONNX_FILE,
    UNFUSED_AT_LOAD,
    export_onnx,
    optimize_onnx,
    quantize_onnx,
)
from .openvino_export import OPENVINO_FILE, OPENVINO_WEIGHTS, write_openvino_int8
from .paths import THRESHOLDS_NAME, TRAINING_PARAMS_NAME
from .prediction import BACKEND_FILES, INT8_BACKENDS, load, load_torch_model, read_thresholds

# The card's model-index: each reported score as the Hub's (metric type, display name, averaging).
CARD_EVAL_RESULTS = {
    "f1_micro": ("f1", "micro-F1", "micro"),
    "f1_macro": ("f1", "macro-F1", "macro"),
    "jaccard": ("jaccard", "Jaccard (SemEval-2018 E-c accuracy)", "samples"),
    "accuracy": ("accuracy", "subset accuracy", None),
    "roc_auc_micro": ("roc_auc", "ROC-AUC micro", "micro"),
    "roc_auc_macro": ("roc_auc", "ROC-AUC macro", "macro"),
}
# Trainer leaves training_args.bin (a pickle) beside the weights; a served folder needs none.
EXCLUDED_FILES = {"training_args.bin"}
PARITY_BATCH_SIZE = 32
# Parity reports these scores for each backend.
PARITY_METRICS = HEADLINE_METRICS
# Checked against PyTorch, in this order, when their files are in the folder.
SERVING_BACKENDS = ("onnx", "onnx-int8", "openvino-int8")

FILE_ROLES = {
    "config.json": "architecture and label maps (`id2label`); read by every loader",
    "model.safetensors": "fine-tuned weights (fp32); `transformers` / `predict --backend torch`",
    ONNX_FILE: "fp32 ONNX graph with fused attention and embeddings; `predict --backend onnx`",
    INT8_FILE: "dynamically quantised int8 ONNX graph; `predict --backend onnx-int8`",
    OPENVINO_FILE: "statically quantised int8 OpenVINO model (NNCF); `predict --backend openvino-int8`",
    OPENVINO_WEIGHTS: f"the weights of {OPENVINO_FILE}",
    "tokenizer.json": "fast tokenizer (truncates at the trained `max_length`)",
    "tokenizer_config.json": "tokenizer settings",
    THRESHOLDS_NAME: "per-label decision thresholds tuned on validation; applied by `predict` and `load()`",
    TRAINING_PARAMS_NAME: "the params the model was trained with",
    "manifest.json": "every file's size and SHA-256, the labels and the params; `load()` checks the files against it",
    "README.md": "this model card",
}


def copy_model_files(model_dir: Path, thresholds_file: Path, out_dir: Path) -> list[str]:
    """Copy the trained model (minus training-only files) and the thresholds into `out_dir`."""
    for path in model_dir.iterdir():
        if path.is_file() and path.name not in EXCLUDED_FILES:
            shutil.copy2(path, out_dir / path.name)
    shutil.copy2(thresholds_file, out_dir / THRESHOLDS_NAME)
    from transformers import AutoConfig

    return config_labels(AutoConfig.from_pretrained(out_dir, trust_remote_code=False))


def write_onnx_files(out_dir: Path, quantize: bool, fp32_ffn_outputs: int = 0) -> list[str]:
    """model.onnx (and model.int8.onnx) from the torch model in `out_dir`; returns the nodes
    the int8 graph keeps in fp32."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(out_dir, trust_remote_code=False)
    # Eager attention traces to the MatMul/Softmax pattern that onnxruntime fuses into Attention.
    model = load_torch_model(out_dir, config, attn_implementation="eager")
    export_onnx(model, AutoTokenizer.from_pretrained(out_dir, trust_remote_code=False), out_dir / ONNX_FILE)
    optimize_onnx(out_dir / ONNX_FILE, config)
    if not quantize:
        return []
    return quantize_onnx(out_dir / ONNX_FILE, out_dir / INT8_FILE, fp32_ffn_outputs=fp32_ffn_outputs)


def write_openvino_file(out_dir: Path, calibration_texts: Sequence[str]) -> None:
    """openvino_model.xml/.bin from the torch model in `out_dir`, calibrated on the raw
    `calibration_texts` (normalised here as the model's own loader would)."""
    reference = load(out_dir, backend="torch", device="cpu")
    texts = normalise_texts(calibration_texts, reference.normalise)
    write_openvino_int8(reference.model, reference.tokenizer, texts, out_dir)


def check_parity(
    folder: Path,
    texts: Sequence[str],
    gold: np.ndarray,
    tolerance: float,
    min_int8_agreement: float = 0.0,
    expected: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compare every serving backend in `folder` with PyTorch on `texts`.

    `expected` is the PyTorch model's probabilities on `texts` when they are already known (the
    export stage passes evaluate's, the very numbers its metrics came from); otherwise they are
    computed here. Raises ParityError when fp32 ONNX probabilities differ from PyTorch's by more
    than `tolerance`, or when an int8 backend decides fewer than `min_int8_agreement` of the
    (text, label) decisions as PyTorch does; each backend's scores and their drop are reported.
    """
    from transformers import AutoConfig

    labels = config_labels(AutoConfig.from_pretrained(folder, trust_remote_code=False))
    rule = read_thresholds(folder, labels)
    if expected is None:
        expected = load(folder, backend="torch", device="cpu").predict_proba(texts, PARITY_BATCH_SIZE, progress=True)
    elif np.shape(expected) != (len(texts), len(labels)):
        raise ValueError(f"expected probabilities of shape {(len(texts), len(labels))}, got {np.shape(expected)}")
    torch_scores = multilabel_metrics(gold, expected, rule, labels)
    report: dict[str, Any] = {
        "n_texts": len(texts),
        "torch": {key: torch_scores[key] for key in PARITY_METRICS},
    }
    for backend in SERVING_BACKENDS:
        if not (folder / BACKEND_FILES[backend]).is_file():
            continue
        got = load(folder, backend=backend).predict_proba(texts, PARITY_BATCH_SIZE, progress=True)
        scores = multilabel_metrics(gold, got, rule, labels)
        report[backend] = {
            "max_abs_diff": float(np.abs(got - expected).max()),
            "label_agreement": float(((got >= rule) == (expected >= rule)).mean()),
            **{key: scores[key] for key in PARITY_METRICS},
            "f1_micro_drop": _drop(torch_scores["f1_micro"], scores["f1_micro"]),
            "jaccard_drop": _drop(torch_scores["jaccard"], scores["jaccard"]),
        }
    fp32 = report.get("onnx")
    if fp32 is not None and fp32["max_abs_diff"] > tolerance:
        raise ParityError(
            f"{ONNX_FILE} differs from the PyTorch model by up to {fp32['max_abs_diff']:.2e} in probability on "
            f"{len(texts)} test texts (export.parity_tolerance is {tolerance:g}); the ONNX export is not faithful"
        )
    for backend in INT8_BACKENDS:
        agreement = report.get(backend, {}).get("label_agreement")
        if agreement is not None and agreement < min_int8_agreement:
            raise ParityError(
                f"{BACKEND_FILES[backend]} ({backend}) agrees with the PyTorch model on {agreement:.2%} of the label "
                f"decisions on {len(texts)} test texts (export.int8_min_agreement is {min_int8_agreement:.2%}); "
                "the quantised model is not faithful"
            )
    return report


def scores_summary(split_metrics: dict[str, Any]) -> dict[str, Any]:
    """A split's headline scores (at the exported thresholds), without the per-label detail."""
    return {"n_examples": split_metrics["n_examples"], **{key: split_metrics[key] for key in CARD_METRICS}}


def _drop(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else before - after


def model_card(
    labels: list[str],
    files: list[str],
    params: dict[str, Any],
    metrics: dict[str, Any],
    parity: dict[str, Any],
    int8_fp32_nodes: Sequence[str] = (),
) -> str:
    """A Hugging Face model card: files, how to use them, parity, the params and the scores."""
    label_aware = params["model"].get("head") == "label_aware"
    file_rows = "\n".join(f"| `{name}` | {FILE_ROLES.get(name, '')} |" for name in files)
    rows = "\n".join(
        f"| {split} | {metrics[split]['n_examples']} | "
        + " | ".join(format_score(metrics[split][key]) for key in CARD_METRICS)
        + " |"
        for split in ("validation", "test")
    )
    per_label = "\n".join(
        f"| {label} | {format_score(s['precision'])} | {format_score(s['recall'])} | {format_score(s['f1'])} | {s['support']} |"
        for label, s in metrics["test"]["per_label"].items()
    )
    rule = metrics["thresholds"]
    threshold = (
        f"tuned on validation for {rule['objective']}; global {rule['default']}, per label in `{THRESHOLDS_NAME}`"
        if rule["rule"] == "tuned"
        else f"{rule['default']} for every label"
    )
    pipeline_use = _standard_use(label_aware, params.get("export", {}).get("onnx", True))
    normalise = params.get("normalise")
    normalise_note = (
        "Texts are normalised before the tokenizer sees them (`normalise` below; also in config.json under\n"
        f"`{NORMALISE_KEY}`). `load()` and `predict` do it for you; anything else that feeds this model\n"
        "(the tokenizer, `transformers.pipeline`, the ONNX graphs directly) must first apply\n"
        "`mlbert.normalise.normalise_text(text, mlbert.normalise.from_config(config))` to each text."
        if normalise and not from_dict(normalise, where="training_params.json normalise").is_identity
        else "Texts go to the tokenizer as given (no normalisation)."
    )
    return f"""---
{card_metadata(params["model"]["name"], metrics)}
---

# Multi-label text classifier

Fine-tuned from `{params["model"]["name"]}` on `{metrics.get("dataset", "unknown data")}` by the mlbert DVC pipeline. Each text gets every
label whose sigmoid probability reaches its threshold ({threshold}),
so it can get none, one or several of: {", ".join(labels)}.

## Files

| file | what it is, what loads it |
|---|---|
{file_rows}

## Use

```python
from mlbert import load

classifier = load("path/to/this/folder")          # fastest backend present; or backend="torch", "onnx", ...
classifier.predict(["What a wonderful surprise!"])  # labels (thresholds applied) and probabilities
```

```bash
predict --model path/to/this/folder --backend onnx-int8 "What a wonderful surprise!"
predict --model path/to/this/folder --file tweets.csv --text-column text --format csv > labels.csv
```

{pipeline_use}

{normalise_note}

ONNX directly: `onnxruntime.InferenceSession("{ONNX_FILE}", disabled_optimizers={list(UNFUSED_AT_LOAD)})`
takes what the tokenizer returns (`input_ids`, `attention_mask`, and `token_type_ids` where it
makes them; int64, dynamic batch and length) and returns `logits`. The disabled fusions are
slower on CPU than the standard ops the graphs keep; without that argument the answers are the
same and serving is slower.{_openvino_use(files)}

## Parity with PyTorch (test split, {parity.get("n_texts", 0)} texts, same batches as PyTorch)

{_parity_table(parity)}
{_fp32_note(int8_fp32_nodes)}

## Scores (thresholds {threshold})

| split | n | {" | ".join(CARD_METRICS)} |
|---|---|{"---|" * len(CARD_METRICS)}
{rows}

At the plain 0.5 rule on test: micro-F1 {format_score(metrics["test"]["at_0_5"]["f1_micro"])}, macro-F1
{format_score(metrics["test"]["at_0_5"]["f1_macro"])}, Jaccard {format_score(metrics["test"]["at_0_5"]["jaccard"])}.

Per label on test:

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{per_label}

## Training params

```yaml
{yaml.safe_dump(params, sort_keys=False).strip()}
```
"""


def card_metadata(base_model: str, metrics: dict[str, Any]) -> str:
    """The card's YAML header, built by huggingface_hub so the Hub reads it: the usual tags and a
    model-index with every validation and test score (the Hub's machine-readable results)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = metrics.get("dataset", "unknown")
    dataset_type, dataset_config = (SEMEVAL_HUB_ID, SEMEVAL_HUB_CONFIG) if dataset == SEMEVAL_NAME else (dataset, None)
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="Multi-label text classification",
            dataset_type=dataset_type,
            dataset_name=dataset,
            dataset_config=dataset_config,
            dataset_split=split,
            metric_type=kind,
            metric_name=name,
            metric_config=average,
            metric_value=round(float(metrics[split][key]), 4),
        )
        for split in ("validation", "test")
        for key, (kind, name, average) in CARD_EVAL_RESULTS.items()
        if metrics[split].get(key) is not None
    ]
    data = ModelCardData(
        model_name=f"mlbert-{dataset}",
        base_model=base_model,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["multi-label-classification", "mlbert", "dvc", "onnx"],
        eval_results=results,
    )
    return data.to_yaml()


def _standard_use(label_aware: bool, has_onnx: bool) -> str:
    """How to load the folder with the standard Hugging Face classes (no trust_remote_code)."""
    weights = (
        "The label-aware head (label names as a first segment) is not a `transformers` architecture, so\n"
        "`pipeline` cannot build it from the safetensors"
        if label_aware
        else '`transformers.pipeline("text-classification", model="path/to/this/folder", top_k=None)` loads the\n'
        "weights (sigmoid probabilities; thresholds.json gives the labels)"
    )
    if not has_onnx:
        return weights + (": load it with `mlbert.load` or `predict`." if label_aware else ".")
    return f"""{weights}; `{ONNX_FILE}` holds the whole model{", label segment included," if label_aware else ""} and
Optimum's standard ONNX Runtime class loads it:

```python
# pip install "optimum-onnx[onnxruntime]"  (Optimum's releases pin transformers < 4.58: give it its own environment)
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline

model = ORTModelForSequenceClassification.from_pretrained("path/to/this/folder", file_name="{ONNX_FILE}")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
classify = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)
classify("What a wonderful surprise!", truncation=True)  # sigmoid probabilities; thresholds.json gives the labels
```"""


def _openvino_use(files: Sequence[str]) -> str:
    if OPENVINO_FILE not in files:
        return ""
    return f"""

OpenVINO directly: `openvino.Core().compile_model("{OPENVINO_FILE}", "CPU", {{"INFERENCE_PRECISION_HINT": "f32"}})`
takes the same inputs and returns `logits`; Optimum Intel's `OVModelForSequenceClassification` looks
for this file name."""


def _fp32_note(nodes: Sequence[str]) -> str:
    if not nodes:
        return ""
    names = ", ".join(f"`{name}`" for name in nodes)
    return f"\n{INT8_FILE} keeps these nodes in fp32 (quantising them costs the most agreement): {names}\n"


def _parity_table(parity: dict[str, Any]) -> str:
    lines = ["| backend | max abs prob. diff vs torch | label agreement | micro-F1 | Jaccard |", "|---|---|---|---|---|"]
    torch_scores = parity.get("torch", {})
    lines.append(f"| torch (fp32) | 0 | 100% | {format_score(torch_scores.get('f1_micro'))} | {format_score(torch_scores.get('jaccard'))} |")
    for backend in SERVING_BACKENDS:
        if backend in parity:
            row = parity[backend]
            lines.append(
                f"| {backend} | {row['max_abs_diff']:.2e} | {100 * row['label_agreement']:.2f}% | "
                f"{format_score(row['f1_micro'])} | {format_score(row['jaccard'])} |"
            )
    return "\n".join(lines)
