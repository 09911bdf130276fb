"""prepare: read the data source named in params.yaml, write normalised splits and the label list.

Outputs: data/prepared/{train,validation,test}.parquet (id, text, labels) and labels.json.
"""

import sys

from mlbert.data import label_warnings, load_splits, shared_texts, write_splits
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.paths import PREPARED_DIR
from mlbert.stage import run_stage


def main() -> str:
    params = load_params().prepare
    splits = load_splits(params)
    for split, count in shared_texts(splits).items():
        if count:
            print(f"prepare: warning: {count} {split} text(s) also occur in train", file=sys.stderr)
    for warning in label_warnings(splits):
        print(f"prepare: warning: {warning}", file=sys.stderr)
    with atomic_dir(PREPARED_DIR) as staging:
        write_splits(splits, staging)
    sizes = ", ".join(f"{name} {len(frame)}" for name, frame in splits.items())
    return f"{sizes} examples, {len(splits.labels)} labels -> {PREPARED_DIR}"


if __name__ == "__main__":
    run_stage("prepare", main)
