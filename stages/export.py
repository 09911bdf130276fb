"""export: a self-contained model folder for `transformers.pipeline` and `predict`.

Output: models/export (safetensors weights, tokenizer, config with label maps, thresholds.json and
a model card README.md with the params and the metrics).
"""

import json
from dataclasses import asdict
from pathlib import Path

from mlbert.export import write_export
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.stage import run_stage

MODEL_DIR = Path("models/trained")
METRICS_FILE = Path("metrics.json")
THRESHOLDS_FILE = Path("models/thresholds.json")
OUTPUT_DIR = "models/export"


def main() -> str:
    params = load_params()
    metrics = json.loads(METRICS_FILE.read_text(encoding="utf-8"))
    card_params = {group: asdict(getattr(params, group)) for group in ("model", "tokenize", "train", "evaluate")}
    with atomic_dir(OUTPUT_DIR) as staging:
        files = write_export(MODEL_DIR, THRESHOLDS_FILE, staging, card_params, metrics)
    return f"{len(files)} files -> {OUTPUT_DIR}"


if __name__ == "__main__":
    run_stage("export", main)
