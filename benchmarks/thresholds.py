"""Which threshold rule to ship: each rule scored by cross-validation inside the validation split.

Thresholds are fitted on validation, so validation scores of a fitted rule flatter it. This
script fits each rule on k-1 folds of validation and scores it on the held-out fold (pooled over
folds, repeated with several shuffles); that cross-validated score is what chooses the default.
Test scores of each rule fitted on the whole validation split are printed beside it for the
record only: nothing is chosen on test.

    python benchmarks/thresholds.py                        # uses models/trained and data/prepared
    python benchmarks/thresholds.py --model models/export --folds 5 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import multilabel_metrics
from mlbert.params import HEADLINE_METRICS, EvaluateParams
from mlbert.paths import PREPARED_DIR, TRAINED_DIR
from mlbert.prediction import load_classifier
from mlbert.thresholds import OBJECTIVES, decision_rule

SHRINKAGES = (0.0, 5.0, 20.0, 50.0)


def rules() -> list[tuple[str, EvaluateParams]]:
    """(name, the `evaluate` params that put the rule in force)."""
    found = [("fixed 0.5", EvaluateParams(threshold=0.5))]
    for objective in OBJECTIVES:
        found.append((f"{objective}, global", EvaluateParams(objective=objective, per_label=False)))
        for shrinkage in SHRINKAGES:
            found.append(
                (f"{objective}, per label, shrinkage {shrinkage:g}",
                 EvaluateParams(objective=objective, per_label=True, shrinkage=shrinkage))
            )  # fmt: skip
    return found


def headline(gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> list[float]:
    scores = multilabel_metrics(gold, probabilities, thresholds, labels)
    return [scores[name] or 0.0 for name in HEADLINE_METRICS]


def cross_validated(gold, probabilities, params: EvaluateParams, labels, folds: int, repeats: int) -> list[float]:
    """Scores of held-out predictions, each fold thresholded by a rule fitted on the other folds."""
    totals = np.zeros(len(HEADLINE_METRICS))
    for repeat in range(repeats):
        order = np.random.default_rng(repeat).permutation(len(gold))
        predicted_thresholds = np.zeros_like(probabilities)
        for part in np.array_split(order, folds):
            rest = np.setdiff1d(order, part)
            predicted_thresholds[part] = decision_rule(params, gold[rest], probabilities[rest]).per_label
        # Thresholding row by row with that row's fold rule gives the held-out predictions.
        totals += headline(gold, probabilities, predicted_thresholds, labels)
    return list(totals / repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=TRAINED_DIR)
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    splits = read_splits(args.data)
    classifier = load_classifier(args.model)
    split_data = {}
    for name in ("validation", "test"):
        frame = getattr(splits, name)
        gold = labels_to_multi_hot(frame["labels"], splits.labels)
        split_data[name] = (gold, classifier.predict_proba(frame["text"].tolist(), 64, progress=True))

    header = "| rule | CV Jaccard | CV micro-F1 | CV macro-F1 | test Jaccard | test micro-F1 | test macro-F1 |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for name, params in rules():
        cv = cross_validated(*split_data["validation"], params, splits.labels, args.folds, args.repeats)
        rule = decision_rule(params, *split_data["validation"])
        test = headline(*split_data["test"], rule.per_label, splits.labels)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in itertools.chain(cv, test)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
