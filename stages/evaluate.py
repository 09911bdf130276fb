"""evaluate: fit the decision thresholds on validation, then score validation and test.

Outputs: models/thresholds.json (the rule `predict` and the export apply), metrics.json
({"validation": {...}, "test": {...}, "thresholds": {...}}; each split's scores under the rule in
force, and under the plain 0.5 rule in `at_0_5`), plots/precision_recall/<label>.json (test
precision-recall curve per label) and plots/per_label_f1.json.
"""

import json
from pathlib import Path

from mlbert.data import DataError, read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import multilabel_metrics, precision_recall_points
from mlbert.outputs import atomic_dir, atomic_file, write_json
from mlbert.params import load_params
from mlbert.prediction import load_classifier
from mlbert.stage import run_stage
from mlbert.thresholds import decision_rule

DATA_DIR = Path("data/prepared")
MODEL_DIR = Path("models/trained")
THRESHOLDS_FILE = Path("models/thresholds.json")
METRICS_FILE = "metrics.json"
PR_DIR = "plots/precision_recall"
PER_LABEL_FILE = "plots/per_label_f1.json"
AT_HALF_METRICS = ("f1_micro", "f1_macro", "jaccard", "accuracy")  # reported again under the plain 0.5 rule


def main() -> str:
    params = load_params().evaluate
    splits = read_splits(DATA_DIR)
    classifier = load_classifier(MODEL_DIR)
    if classifier.labels != splits.labels:
        raise DataError(f"{MODEL_DIR} was trained on labels {classifier.labels}, data has {splits.labels}")
    scored = {}
    for name in ("validation", "test"):
        frame = getattr(splits, name)
        gold = labels_to_multi_hot(frame["labels"], splits.labels)
        scored[name] = (gold, classifier.predict_proba(frame["text"].tolist(), params.batch_size, progress=True))

    rule = decision_rule(params, *scored["validation"])  # validation only: test never chooses anything
    report = {}
    for name, (gold, probabilities) in scored.items():
        report[name] = multilabel_metrics(gold, probabilities, rule.per_label, splits.labels)
        at_half = multilabel_metrics(gold, probabilities, 0.5, splits.labels)
        report[name]["at_0_5"] = {key: at_half[key] for key in AT_HALF_METRICS}
    rule_json = rule.to_json(splits.labels)
    report["thresholds"] = {"rule": "tuned" if params.threshold == "tuned" else "fixed", **rule_json}

    with atomic_file(THRESHOLDS_FILE) as staging:
        staging.write_text(json.dumps(rule_json, indent=2) + "\n", encoding="utf-8")
    write_json(METRICS_FILE, report)
    with atomic_dir(PR_DIR) as staging:
        for label, points in precision_recall_points(*scored["test"], splits.labels).items():
            write_json(staging / f"{label}.json", points)
    per_label = report["test"]["per_label"].items()
    write_json(PER_LABEL_FILE, [{"label": label, "f1": s["f1"]} for label, s in per_label if s["f1"] is not None])
    test, half = report["test"], report["test"]["at_0_5"]
    return (
        f"test micro-F1 {_fmt(test['f1_micro'])}, macro-F1 {_fmt(test['f1_macro'])}, Jaccard {_fmt(test['jaccard'])} "
        f"(at 0.5: {_fmt(half['f1_micro'])}, {_fmt(half['f1_macro'])}, {_fmt(half['jaccard'])}); "
        f"global threshold {rule.global_} -> {METRICS_FILE}, {THRESHOLDS_FILE}"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    run_stage("evaluate", main)
