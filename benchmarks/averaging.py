"""Which epochs to average: each epoch alone, the k best by validation score, and the last k.

Scores every candidate on validation at the 0.5 threshold (Jaccard, micro-F1, macro-F1 and their
mean, the `score` that `train.select_epoch_by` uses); this is what chose
`train.average_top_epochs`. Test is not scored: nothing here may be chosen on it.

It reads the checkpoints of one training run. The train stage removes its `checkpoints/` folder
after a successful run, so keep one by running the stage with that last removal skipped, e.g. in
a scratch clone:

    python benchmarks/averaging.py --checkpoints checkpoints --model models/trained
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import multilabel_metrics
from mlbert.prediction import load_torch_model, predict_probabilities, torch_forward
from mlbert.training import HEADLINE_METRICS, average_weights


def candidates(steps: list[int], validation_score: dict[int, float]) -> dict[str, list[int]]:
    """Each epoch alone, the 2 to 5 best by validation score, and the last 3 to 6."""
    ranked = sorted(steps, key=lambda step: (-validation_score[step], step))
    found = {f"epoch {i + 1}": [step] for i, step in enumerate(steps)}
    found.update({f"best {k}": sorted(ranked[:k]) for k in range(2, 6)})
    found.update({f"last {k}": steps[-k:] for k in range(3, 7)})
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--model", type=Path, default=Path("models/trained"), help="config and tokenizer")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    args = parser.parse_args(argv)

    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    folders = sorted(args.checkpoints.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    if not folders:
        sys.exit(f"--checkpoints {args.checkpoints}: no checkpoint-* folders")
    history = json.loads((folders[-1] / "trainer_state.json").read_text())["log_history"]
    validation_score = {entry["step"]: entry["eval_score"] for entry in history if "eval_score" in entry}
    weights = {int(folder.name.split("-")[1]): load_file(str(folder / "model.safetensors")) for folder in folders}
    steps = sorted(weights)

    config = AutoConfig.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    labels = [config.id2label[i] for i in range(config.num_labels)]
    model = load_torch_model(args.model, config)
    validation = read_splits(args.data).validation
    texts, gold = validation["text"].tolist(), labels_to_multi_hot(validation["labels"], labels)

    print("| candidate | epochs | Jaccard | micro-F1 | macro-F1 | mean |")
    print("|---|---|---|---|---|---|")
    for name, chosen in candidates(steps, validation_score).items():
        model.load_state_dict(average_weights([weights[step] for step in chosen]), strict=False)
        probabilities = predict_probabilities(torch_forward(model.eval()), tokenizer, texts, len(labels), batch_size=64)
        scores = multilabel_metrics(gold, probabilities, 0.5, labels)
        values = [scores[key] or 0.0 for key in HEADLINE_METRICS]
        epochs = ", ".join(str(steps.index(step) + 1) for step in chosen)
        print(f"| {name} | {epochs} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {np.mean(values):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
