"""What averaging the probabilities of several trained models (e.g. seeds) would score.

    python benchmarks/seed_ensemble.py models/export ../other-run/models/export

Each folder is an exported (or trained) model folder from a full run with the same data and
labels. Every model scores validation and test; the ensemble is the mean of their
probabilities. Each row's decision rule comes from this repo's `evaluate` params through the
evaluate stage's own `decision_rule` (fitted on validation only when tuned); test is only scored. Prints validation and test Jaccard / micro-F1 / macro-F1 for every model alone
and for the ensemble.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import format_score, multilabel_metrics
from mlbert.params import HEADLINE_METRICS, load_params
from mlbert.paths import PREPARED_DIR
from mlbert.prediction import load
from mlbert.thresholds import decision_rule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="model folders, two or more")
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("an ensemble needs at least two model folders")

    params = load_params().evaluate
    splits = read_splits(args.data)
    gold = {name: labels_to_multi_hot(getattr(splits, name)["labels"], splits.labels) for name in ("validation", "test")}
    probabilities: dict[str, dict[str, np.ndarray]] = {}
    for folder in args.models:
        classifier = load(folder, backend="torch")
        if classifier.labels != splits.labels:
            parser.error(f"{folder} has labels {classifier.labels}, the data has {splits.labels}")
        probabilities[str(folder)] = {
            name: classifier.predict_proba(getattr(splits, name)["text"].tolist(), params.batch_size, progress=True)
            for name in gold
        }
    probabilities["ensemble (mean)"] = {
        name: np.mean([run[name] for run in probabilities.values()], axis=0) for name in gold
    }

    print(f"rule from the evaluate params: threshold {params.threshold}, objective {params.objective}, per_label {params.per_label}\n")
    print("| model | threshold | val Jaccard | val micro-F1 | val macro-F1 | test Jaccard | test micro-F1 | test macro-F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for model, scored in probabilities.items():
        rule = decision_rule(params, gold["validation"], scored["validation"])
        cells = []
        for name in ("validation", "test"):
            scores = multilabel_metrics(gold[name], scored[name], rule.per_label, splits.labels)
            cells += [format_score(scores[key]) for key in HEADLINE_METRICS]
        print(f"| {model} | {rule.default:.2f} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
