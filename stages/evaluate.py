"""evaluate: score the trained model on validation and test.

Outputs: metrics.json ({"validation": {...}, "test": {...}}), plots/precision_recall/<label>.json
(test precision-recall curve per label) and plots/per_label_f1.json.
"""

from pathlib import Path

from mlbert.data import DataError, read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import multilabel_metrics, precision_recall_points
from mlbert.outputs import atomic_dir, write_json
from mlbert.params import load_params
from mlbert.prediction import load_classifier
from mlbert.stage import run_stage

DATA_DIR = Path("data/prepared")
MODEL_DIR = Path("models/trained")
METRICS_FILE = "metrics.json"
PR_DIR = "plots/precision_recall"
PER_LABEL_FILE = "plots/per_label_f1.json"


def main() -> str:
    params = load_params().evaluate
    splits = read_splits(DATA_DIR)
    classifier = load_classifier(MODEL_DIR)
    if classifier.labels != splits.labels:
        raise DataError(f"{MODEL_DIR} was trained on labels {classifier.labels}, data has {splits.labels}")
    report, curves = {}, {}
    for name in ("validation", "test"):
        frame = getattr(splits, name)
        gold = labels_to_multi_hot(frame["labels"], splits.labels)
        probabilities = classifier.predict_proba(frame["text"].tolist(), params.batch_size, progress=True)
        report[name] = multilabel_metrics(gold, probabilities, params.threshold, splits.labels)
        curves[name] = (gold, probabilities)

    write_json(METRICS_FILE, report)
    with atomic_dir(PR_DIR) as staging:
        for label, points in precision_recall_points(*curves["test"], splits.labels).items():
            write_json(staging / f"{label}.json", points)
    per_label = report["test"]["per_label"].items()
    write_json(PER_LABEL_FILE, [{"label": label, "f1": s["f1"]} for label, s in per_label if s["f1"] is not None])
    test = report["test"]
    return (
        f"test micro-F1 {test['f1_micro']}, macro-F1 {test['f1_macro']}, "
        f"Jaccard {test['jaccard']:.4f} at threshold {params.threshold} -> {METRICS_FILE}"
    )


if __name__ == "__main__":
    run_stage("evaluate", main)
