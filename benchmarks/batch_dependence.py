"""Does a text's answer depend on the other texts in its batch? Per backend of the exported folder,
the probabilities of every text of a split in length-sorted batches of 32, against the same texts
in reverse order (other batch-mates) and one at a time.

    python benchmarks/batch_dependence.py                       # every backend models/export holds
    python benchmarks/batch_dependence.py --backends onnx-int8 openvino-int8 --split validation

Dynamic int8 quantisation (onnx-int8) scales each batch's activations by that batch's range, so
batch-mates move a text's probabilities; static int8 (openvino-int8, scales fixed at export) and
the fp32 backends should not move at all beyond float rounding.
"""

from __future__ import annotations

import argparse

import numpy as np

from mlbert.data import read_splits
from mlbert.paths import EXPORT_DIR, PREPARED_DIR
from mlbert.prediction import available_backends, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(EXPORT_DIR))
    parser.add_argument("--data", default=str(PREPARED_DIR), help="prepared splits (default: %(default)s)")
    parser.add_argument("--backends", nargs="+", help="default: every backend the folder holds")
    parser.add_argument("--split", choices=("validation", "test"), default="test")
    args = parser.parse_args(argv)
    texts = list(getattr(read_splits(args.data), args.split)["text"])
    print("| backend | against | max abs difference | (text, label) decisions that differ | texts whose label set differs |")
    print("|---|---|---|---|---|")
    for backend in args.backends or available_backends(args.model):
        classifier = load(args.model, backend=backend, device="cpu")
        batched = classifier.predict_proba(texts, batch_size=32)
        others = {
            "reverse order": classifier.predict_proba(texts[::-1], batch_size=32)[::-1],
            "one at a time": classifier.predict_proba(texts, batch_size=1),
        }
        for name, other in others.items():
            differ = (other >= classifier.thresholds) != (batched >= classifier.thresholds)
            print(
                f"| {backend} | {name} | {np.abs(other - batched).max():.4f} | {differ.mean():.2%} | "
                f"{differ.any(axis=1).mean():.2%} of {len(texts)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
