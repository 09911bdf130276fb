"""Where each stage reads and writes, relative to the repository root (DVC runs every stage from
there; `dvc.yaml` declares the same paths), and the file names inside a model folder."""

from __future__ import annotations

from pathlib import Path

PREPARED_DIR = Path("data/prepared")  # prepare: {train,validation,test}.parquet + labels.json
TOKENIZED_DIR = Path("data/tokenized")  # tokenize: a datasets DatasetDict + labels.json
CHECKPOINT_DIR = Path("checkpoints")  # train: resumable checkpoints, removed after success
TRAIN_LOCK_PATH = Path("checkpoints.lock")  # train: held while a training runs here
LIVE_DIR = Path("dvclive")  # train: curves and the run summary
TRAINED_DIR = Path("models/trained")  # train: the fine-tuned model
THRESHOLDS_PATH = Path("models/thresholds.json")  # evaluate: the decision rule
METRICS_PATH = Path("metrics.json")  # evaluate: every score, validation and test
PR_CURVES_DIR = Path("plots/precision_recall")  # evaluate: one curve per label (test)
PER_LABEL_F1_PATH = Path("plots/per_label_f1.json")  # evaluate: bar chart data (test)
ERROR_PLOTS_DIR = Path("plots/errors")  # evaluate: error analysis (validation), one file per plot
CONFIDENT_ERRORS_PATH = Path("predictions/validation_errors.csv")  # evaluate: quotes texts, so DVC-cached
EXPORT_DIR = Path("models/export")  # export: the served folder
EXPORT_METRICS_PATH = Path("export_metrics.json")  # export: ONNX parity on test

DEMO_DIR = Path("data/demo/goemotions")  # the bundled demo data set (GoEmotions test split)

# Inside a folder
LABELS_NAME = "labels.json"  # the ordered label list, in data/prepared and data/tokenized
NORMALISE_NAME = "normalise.json"  # the text normalisation applied, in data/tokenized
DATASET_NAME = "dataset.json"  # which data set prepare read, in data/prepared
THRESHOLDS_NAME = "thresholds.json"  # the decision rule, in an exported model folder
TRAINING_PARAMS_NAME = "training_params.json"  # the params a trained model was made with
