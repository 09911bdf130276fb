"""export: a self-contained model folder for `transformers.pipeline`, `predict` and `mlbert.load`.

Output: models/export (safetensors weights, model.onnx and model.int8.onnx, tokenizer, config with
label maps, thresholds.json, a model card README.md) and export_metrics.json: on the test split,
how far each ONNX graph's probabilities are from PyTorch's, how often int8 decides a label
differently, and its scores beside PyTorch's. fp32 ONNX beyond export.parity_tolerance fails the
stage and leaves no folder behind.
"""

import json
from dataclasses import asdict
from pathlib import Path

from mlbert.data import read_splits
from mlbert.export import check_parity, copy_model_files, model_card, write_onnx_files
from mlbert.labels import labels_to_multi_hot
from mlbert.outputs import atomic_dir, write_json
from mlbert.params import load_params
from mlbert.stage import run_stage

MODEL_DIR = Path("models/trained")
THRESHOLDS_FILE = Path("models/thresholds.json")
DATA_DIR = Path("data/prepared")
METRICS_FILE = Path("metrics.json")
PARITY_FILE = "export_metrics.json"
OUTPUT_DIR = "models/export"


def main() -> str:
    params = load_params()
    metrics = json.loads(METRICS_FILE.read_text(encoding="utf-8"))
    test = read_splits(DATA_DIR).test
    card_params = {group: asdict(getattr(params, group)) for group in ("model", "tokenize", "train", "evaluate", "export")}
    with atomic_dir(OUTPUT_DIR) as staging:
        labels = copy_model_files(MODEL_DIR, THRESHOLDS_FILE, staging)
        fp32_nodes = []
        if params.export.onnx:
            fp32_nodes = write_onnx_files(staging, params.export.int8, params.export.int8_fp32_ffn_outputs)
        gold = labels_to_multi_hot(test["labels"], labels)
        parity = check_parity(staging, test["text"].tolist(), gold, params.export.parity_tolerance)
        if "onnx-int8" in parity:
            parity["onnx-int8"]["fp32_nodes"] = len(fp32_nodes)
        files = sorted([path.name for path in staging.iterdir()] + ["README.md"])
        (staging / "README.md").write_text(model_card(labels, files, card_params, metrics, parity, fp32_nodes), encoding="utf-8")
    write_json(PARITY_FILE, parity)
    summary = ", ".join(
        f"{backend} max diff {parity[backend]['max_abs_diff']:.1e}, agreement {parity[backend]['label_agreement']:.2%}"
        for backend in ("onnx", "onnx-int8")
        if backend in parity
    )
    return f"{len(files)} files -> {OUTPUT_DIR}; {summary or 'no ONNX'} -> {PARITY_FILE}"


if __name__ == "__main__":
    run_stage("export", main)
