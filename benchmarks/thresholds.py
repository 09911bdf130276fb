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
from mlbert.prediction import load_classifier
from mlbert.thresholds import OBJECTIVES, Thresholds, fit_thresholds

SHRINKAGES = (0.0, 5.0, 20.0, 50.0)
SCORES = ("jaccard", "f1_micro", "f1_macro")


def rules() -> list[tuple[str, dict | None]]:
    """(name, fit_thresholds kwargs); None is the fixed 0.5 rule."""
    found: list[tuple[str, dict | None]] = [("fixed 0.5", None)]
    for objective in OBJECTIVES:
        found.append((f"{objective}, global", {"objective": objective, "per_label": False}))
        for shrinkage in SHRINKAGES:
            found.append(
                (f"{objective}, per label, shrinkage {shrinkage:g}",
                 {"objective": objective, "per_label": True, "shrinkage": shrinkage})
            )  # fmt: skip
    return found


def fit(gold: np.ndarray, probabilities: np.ndarray, kwargs: dict | None) -> Thresholds:
    return Thresholds.fixed(0.5, gold.shape[1]) if kwargs is None else fit_thresholds(gold, probabilities, **kwargs)


def headline(gold: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, labels: list[str]) -> list[float]:
    scores = multilabel_metrics(gold, probabilities, thresholds, labels)
    return [scores[name] or 0.0 for name in SCORES]


def cross_validated(gold, probabilities, kwargs, labels, folds: int, repeats: int) -> list[float]:
    """Scores of held-out predictions, each fold thresholded by a rule fitted on the other folds."""
    totals = np.zeros(len(SCORES))
    for repeat in range(repeats):
        order = np.random.default_rng(repeat).permutation(len(gold))
        predicted_thresholds = np.zeros_like(probabilities)
        for part in np.array_split(order, folds):
            rest = np.setdiff1d(order, part)
            predicted_thresholds[part] = fit(gold[rest], probabilities[rest], kwargs).per_label
        # Thresholding row by row with that row's fold rule gives the held-out predictions.
        totals += headline(gold, probabilities, predicted_thresholds, labels)
    return list(totals / repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/trained")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    splits = read_splits(Path(args.data))
    classifier = load_classifier(args.model)
    split_data = {}
    for name in ("validation", "test"):
        frame = getattr(splits, name)
        gold = labels_to_multi_hot(frame["labels"], splits.labels)
        split_data[name] = (gold, classifier.predict_proba(frame["text"].tolist(), 64, progress=True))

    header = "| rule | CV Jaccard | CV micro-F1 | CV macro-F1 | test Jaccard | test micro-F1 | test macro-F1 |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for name, kwargs in rules():
        cv = cross_validated(*split_data["validation"], kwargs, splits.labels, args.folds, args.repeats)
        rule = fit(*split_data["validation"], kwargs)
        test = headline(*split_data["test"], rule.per_label, splits.labels)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in itertools.chain(cv, test)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
