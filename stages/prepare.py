"""prepare: read the data source named in params.yaml, write normalised splits and the label list.

Outputs: data/prepared/{train,validation,test}.parquet (id, text, labels), labels.json and
dataset.json (which data set this is; evaluate copies its name into metrics.json).
"""

import json
import sys

from mlbert.data import dataset_card, demo_notice, label_warnings, load_splits, resolve_source, shared_texts, write_splits
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.paths import DATASET_NAME, PREPARED_DIR
from mlbert.stage import run_stage


def main() -> str:
    params = load_params().prepare
    source = resolve_source(params)
    if source == "demo" and params.source == "auto":
        print(f"prepare: {demo_notice(params)}", file=sys.stderr)
    splits = load_splits(params, source)
    for split, count in shared_texts(splits).items():
        if count:
            print(f"prepare: warning: {count} {split} text(s) also occur in train", file=sys.stderr)
    for warning in label_warnings(splits):
        print(f"prepare: warning: {warning}", file=sys.stderr)
    card = dataset_card(source, params)
    with atomic_dir(PREPARED_DIR) as staging:
        write_splits(splits, staging)
        (staging / DATASET_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    sizes = ", ".join(f"{name} {len(frame)}" for name, frame in splits.items())
    return f"{card['name']}: {sizes} examples, {len(splits.labels)} labels -> {PREPARED_DIR}"


if __name__ == "__main__":
    run_stage("prepare", main)
