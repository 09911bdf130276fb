"""Which epochs to average: each epoch alone, the k best by validation headline_mean, and the last k.

Scores every candidate on validation at the 0.5 threshold (Jaccard, micro-F1, macro-F1 and their
mean, `headline_mean`, the default of `train.select_epoch_by`); this is what chose
`train.average_top_epochs`. Test is not scored: nothing here may be chosen on it.

It reads the checkpoints of one training run. The train stage removes its `checkpoints/` folder
after a successful run, so keep one by running the stage with that last removal skipped, e.g. in
a scratch clone:

    python benchmarks/averaging.py --checkpoints checkpoints --model models/trained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlbert.checkpoints import load_averaged_checkpoints, top_epochs
from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import format_score, headline_mean, multilabel_metrics
from mlbert.params import HEADLINE_MEAN, HEADLINE_METRICS
from mlbert.paths import CHECKPOINT_DIR, PREPARED_DIR, TRAINED_DIR
from mlbert.prediction import load


def candidates(state: Any, steps: list[int]) -> dict[str, list[int]]:
    """Each epoch alone, the 2 to 5 best by validation headline_mean, and the last 3 to 6 (as
    many as there are epochs)."""
    found = {f"epoch {i + 1}": [step] for i, step in enumerate(steps)}
    for k in range(2, min(5, len(steps)) + 1):
        found[f"best {k}"] = sorted(entry["step"] for entry in top_epochs(state, HEADLINE_MEAN, k))
    for k in range(3, min(6, len(steps)) + 1):
        found[f"last {k}"] = steps[-k:]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--model", type=Path, default=TRAINED_DIR, help="config and tokenizer")
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    args = parser.parse_args(argv)

    from transformers import TrainerState

    folders = {int(path.name.split("-")[1]): path for path in args.checkpoints.glob("checkpoint-*")}
    if not folders:
        sys.exit(f"--checkpoints {args.checkpoints}: no checkpoint-* folders")
    steps = sorted(folders)
    state = TrainerState.load_from_json(str(folders[steps[-1]] / "trainer_state.json"))

    classifier = load(args.model, backend="torch")
    validation = read_splits(args.data).validation
    texts, gold = validation["text"].tolist(), labels_to_multi_hot(validation["labels"], classifier.labels)

    print("| candidate | epochs | Jaccard | micro-F1 | macro-F1 | mean |")
    print("|---|---|---|---|---|---|")
    for name, chosen in candidates(state, steps).items():
        load_averaged_checkpoints(classifier.model, [folders[step] for step in chosen])
        probabilities = classifier.predict_proba(texts, batch_size=64)
        scores = multilabel_metrics(gold, probabilities, 0.5, classifier.labels)
        epochs = ", ".join(str(steps.index(step) + 1) for step in chosen)
        cells = [format_score(scores[key]) for key in HEADLINE_METRICS] + [format_score(headline_mean(scores))]
        print(f"| {name} | {epochs} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
