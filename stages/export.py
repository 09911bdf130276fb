"""export: a self-contained model folder for `transformers.pipeline`, `predict` and `mlbert.load`.

Output: models/export (safetensors weights, model.onnx, model.int8.onnx and openvino_model.xml/.bin,
tokenizer, config with label maps, thresholds.json, training_params.json, a model card README.md,
and manifest.json with every file's SHA-256, which `load()` checks) and
export_metrics.json: on the test split, how far each serving backend's probabilities are from
PyTorch's (evaluate's, read from predictions/test.parquet), how often it decides a label
differently, and its scores beside PyTorch's. fp32 ONNX beyond export.parity_tolerance, or an int8
backend below export.int8_min_agreement, fails the stage and leaves no folder behind.

The card's params come from the files the earlier stages wrote (training_params.json, the
thresholds' `fitted_with`), so this stage reads only the `export:` group.
"""

import json
from dataclasses import asdict

import numpy as np

from mlbert.comparison import PREDICTIONS_DIR, WORKSPACE, read_run
from mlbert.data import read_splits
from mlbert.errors import DataError
from mlbert.export import (
    SERVING_BACKENDS,
    check_parity,
    copy_model_files,
    model_card,
    scores_summary,
    write_onnx_files,
    write_openvino_file,
)
from mlbert.labels import labels_to_multi_hot
from mlbert.manifest import MANIFEST_NAME, write_manifest
from mlbert.outputs import publish_together
from mlbert.params import load_params
from mlbert.paths import (
    EXPORT_DIR,
    EXPORT_METRICS_PATH,
    METRICS_PATH,
    PREPARED_DIR,
    THRESHOLDS_NAME,
    THRESHOLDS_PATH,
    TRAINED_DIR,
    TRAINING_PARAMS_NAME,
)
from mlbert.stage import run_stage


def evaluated_probabilities(ids: list[str], labels: list[str]) -> np.ndarray:
    """The trained model's test probabilities as evaluate wrote them, checked against the split:
    parity compares every backend with them, so PyTorch need not run on test again."""
    evaluated = read_run(WORKSPACE, "test")
    if evaluated.ids != ids or evaluated.labels != labels:
        raise DataError(
            f"{PREDICTIONS_DIR / 'test.parquet'} does not hold the prepared test split's texts and labels "
            "in order: it is stale, rerun `dvc repro evaluate`"
        )
    return evaluated.probabilities


def main() -> str:
    params = load_params().export
    metrics = json.loads(METRICS_PATH.read_text(encoding="utf-8"))
    splits = read_splits(PREPARED_DIR)
    test = splits.test
    with publish_together() as outputs:  # the folder and its parity report appear together
        staging = outputs.dir(EXPORT_DIR)
        labels = copy_model_files(TRAINED_DIR, THRESHOLDS_PATH, staging)
        fp32_nodes = []
        if params.onnx:
            fp32_nodes = write_onnx_files(staging, params.int8, params.int8_fp32_ffn_outputs)
        if params.openvino_int8:  # calibrated on validation: the test split only reports
            write_openvino_file(staging, splits.validation["text"].tolist())
        gold = labels_to_multi_hot(test["labels"], labels)
        evaluated = evaluated_probabilities(test["id"].astype(str).tolist(), labels)
        parity = check_parity(
            staging, test["text"].tolist(), gold, params.parity_tolerance, params.int8_min_agreement, expected=evaluated
        )
        if "onnx-int8" in parity:
            parity["onnx-int8"]["fp32_nodes"] = len(fp32_nodes)
        card_params = {
            **json.loads((staging / TRAINING_PARAMS_NAME).read_text(encoding="utf-8")),
            "evaluate": json.loads((staging / THRESHOLDS_NAME).read_text(encoding="utf-8"))["fitted_with"],
            "export": asdict(params),
        }
        files = sorted([path.name for path in staging.iterdir()] + ["README.md", MANIFEST_NAME])
        (staging / "README.md").write_text(model_card(labels, files, card_params, metrics, parity, fp32_nodes), encoding="utf-8")
        scores = {split: scores_summary(metrics[split]) for split in ("validation", "test")}
        write_manifest(staging, labels, card_params, scores)  # last: it fingerprints every other file
        outputs.json(EXPORT_METRICS_PATH, parity)
    summary = ", ".join(
        f"{backend} max diff {parity[backend]['max_abs_diff']:.1e}, agreement {parity[backend]['label_agreement']:.2%}"
        for backend in SERVING_BACKENDS
        if backend in parity
    )
    return f"{len(files)} files -> {EXPORT_DIR}; {summary or 'no ONNX'} -> {EXPORT_METRICS_PATH}"


if __name__ == "__main__":
    run_stage("export", main)
