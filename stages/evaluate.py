"""evaluate: fit the decision thresholds on validation, then score validation and test.

Outputs: models/thresholds.json (the rule `predict` and the export apply, with the params it was
fitted with), metrics.json ({"dataset": name, "validation": {...}, "test": {...}, "thresholds": {...}}; each
split's scores under the rule in force, and under the plain 0.5 rule in `at_0_5`),
plots/precision_recall/<label>.json (test precision-recall curve per label) and
plots/per_label_f1.json, plots/errors/*.json (error analysis on validation: label confusion,
label co-occurrence in gold and predicted sets, labels per text, reliability diagram), and
predictions/{validation,test}.parquet (per-text probabilities and gold labels, which `compare-runs`
reads) with predictions/validation_errors.csv (the most confident wrong decisions, with their
texts); the predictions folder is DVC-cached, never committed to git.

The error analysis reads validation, not test: it is what a user looks at to decide what to
change next, and the test split only reports.
"""

import json
from dataclasses import asdict

import pandas as pd

from mlbert.comparison import PREDICTIONS_DIR, prediction_frame
from mlbert.data import read_dataset_card, read_splits
from mlbert.error_analysis import (
    CONFIDENT_ERROR_COLUMNS,
    confident_errors,
    expected_calibration_error,
    plot_tables,
    reliability,
)
from mlbert.errors import DataError
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import (
    AT_HALF_METRICS,
    format_score,
    multilabel_metrics,
    precision_recall_points,
)
from mlbert.outputs import publish_together
from mlbert.params import load_params
from mlbert.paths import (
    CONFIDENT_ERRORS_PATH,
    ERROR_PLOTS_DIR,
    METRICS_PATH,
    PER_LABEL_F1_PATH,
    PR_CURVES_DIR,
    PREPARED_DIR,
    THRESHOLDS_PATH,
    TRAINED_DIR,
)
from mlbert.prediction import load_classifier
from mlbert.stage import run_stage
from mlbert.thresholds import decision_rule


def main() -> str:
    params = load_params().evaluate
    splits = read_splits(PREPARED_DIR)
    classifier = load_classifier(TRAINED_DIR)
    if classifier.labels != splits.labels:
        raise DataError(f"{TRAINED_DIR} was trained on labels {classifier.labels}, data has {splits.labels}")
    scored = {}
    for name in ("validation", "test"):
        frame = getattr(splits, name)
        gold = labels_to_multi_hot(frame["labels"], splits.labels)
        scored[name] = (gold, classifier.predict_proba(frame["text"].tolist(), params.batch_size, progress=True))

    rule = decision_rule(params, *scored["validation"])  # validation only: test never chooses anything
    report = {"dataset": read_dataset_card(PREPARED_DIR)["name"]}
    for name, (gold, probabilities) in scored.items():
        report[name] = multilabel_metrics(gold, probabilities, rule.per_label, splits.labels)
        at_half = multilabel_metrics(gold, probabilities, 0.5, splits.labels)
        report[name]["at_0_5"] = {key: at_half[key] for key in AT_HALF_METRICS}
        report[name]["calibration_error"] = expected_calibration_error(reliability(gold, probabilities))
    error_plots = plot_tables(*scored["validation"], rule.per_label, splits.labels)
    validation = splits.validation
    worst = confident_errors(
        validation["id"].tolist(), validation["text"].tolist(), *scored["validation"], rule.per_label, splits.labels
    )
    rule_json = rule.to_json(splits.labels)
    report["thresholds"] = {"rule": "tuned" if params.threshold == "tuned" else "fixed", **rule_json}
    fitted_with = {key: value for key, value in asdict(params).items() if key != "batch_size"}

    per_label = report["test"]["per_label"].items()
    with publish_together() as outputs:  # the outputs appear together or not at all
        outputs.json(THRESHOLDS_PATH, {**rule_json, "fitted_with": fitted_with})
        outputs.json(METRICS_PATH, report)
        curves = outputs.dir(PR_CURVES_DIR)
        for label, points in precision_recall_points(*scored["test"], splits.labels).items():
            (curves / f"{label}.json").write_text(json.dumps(points, indent=2) + "\n", encoding="utf-8")
        outputs.json(PER_LABEL_F1_PATH, [{"label": label, "f1": s["f1"]} for label, s in per_label if s["f1"] is not None])
        errors = outputs.dir(ERROR_PLOTS_DIR)
        for name, rows in error_plots.items():
            (errors / name).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        predictions = outputs.dir(PREDICTIONS_DIR)  # for `compare-runs`: DVC-cached, never in git
        for name, (_, probabilities) in scored.items():
            frame = getattr(splits, name)
            table = prediction_frame(frame["id"], frame["labels"], probabilities, splits.labels)
            table.to_parquet(predictions / f"{name}.parquet", index=False)
        pd.DataFrame(worst, columns=CONFIDENT_ERROR_COLUMNS).to_csv(
            predictions / CONFIDENT_ERRORS_PATH.name, index=False
        )
    test, half = report["test"], report["test"]["at_0_5"]
    return (
        f"test micro-F1 {format_score(test['f1_micro'])}, macro-F1 {format_score(test['f1_macro'])}, "
        f"Jaccard {format_score(test['jaccard'])} (at 0.5: {format_score(half['f1_micro'])}, "
        f"{format_score(half['f1_macro'])}, {format_score(half['jaccard'])}); "
        f"global threshold {rule.default} -> {METRICS_PATH}, {THRESHOLDS_PATH}"
    )


if __name__ == "__main__":
    run_stage("evaluate", main)
