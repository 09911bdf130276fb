"""A classical baseline on the prepared splits: TF-IDF word and character n-grams, one logistic
regression per label. The fine-tuned encoder must clear it clearly to be worth its cost.

    python benchmarks/baseline_tfidf.py                 # data/prepared, the evaluate params in params.yaml

The regularisation strength C is chosen on validation (by the headline mean, with the evaluate
stage's own threshold rule fitted on validation); test is printed for the record only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import format_score, headline_mean, multilabel_metrics
from mlbert.params import HEADLINE_METRICS, load_params
from mlbert.paths import PREPARED_DIR
from mlbert.thresholds import decision_rule

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def features(train_texts: list[str]):
    """A fitted TF-IDF of word 1-2-grams and character 2-5-grams (robust to misspellings)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    union = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ]
    )
    return union.fit(train_texts)


def fit_predict(x_train, y_train: np.ndarray, x_eval: list, c: float) -> list[np.ndarray]:
    """Probabilities for each matrix in `x_eval` from one logistic regression per label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, solver="liblinear"), n_jobs=None)
    model.fit(x_train, y_train)
    return [model.predict_proba(x) for x in x_eval]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    parser.add_argument("--c", type=float, nargs="*", default=list(C_GRID), help="values of C to choose from")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    evaluate = load_params().evaluate
    splits = read_splits(args.data)
    gold = {name: labels_to_multi_hot(frame["labels"], splits.labels) for name, frame in splits.items()}
    vectoriser = features(splits.train["text"].tolist())
    x = {name: vectoriser.transform(frame["text"].tolist()) for name, frame in splits.items()}

    print("| C | validation headline mean | validation Jaccard | micro-F1 | macro-F1 |")
    print("|---|---|---|---|---|")
    best = None
    for c in args.c:
        validation, test = fit_predict(x["train"], gold["train"], [x["validation"], x["test"]], c)
        rule = decision_rule(evaluate, gold["validation"], validation)
        scores = multilabel_metrics(gold["validation"], validation, rule.per_label, splits.labels)
        mean = headline_mean(scores)
        print(f"| {c:g} | {mean:.4f} | " + " | ".join(format_score(scores[k]) for k in HEADLINE_METRICS) + " |", flush=True)
        if best is None or mean > best[0]:
            best = (mean, c, rule, test)
    _, c, rule, test = best
    scores = multilabel_metrics(gold["test"], test, rule.per_label, splits.labels)
    print(f"\nchosen on validation: C {c:g}, threshold {rule.default:.2f}")
    print(f"test ({len(splits.test)} texts): Jaccard {format_score(scores['jaccard'])}, micro-F1 "
          f"{format_score(scores['f1_micro'])}, macro-F1 {format_score(scores['f1_macro'])}  "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
