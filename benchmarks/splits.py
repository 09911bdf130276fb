"""How well a held-out split keeps the label balance of the whole: iterative stratification
(what `prepare` uses when a validation or test file is missing) against the rule it replaced
(stratify on each row's rarest label) and a plain random split.

The data is one training file, split as `prepare` splits it (test_fraction, then
validation_fraction of what is left) over several seeds. For each part it measures how far each
label's frequency, and each label pair's co-occurrence frequency, is from the whole file's:

    python benchmarks/splits.py --data-dir ../shared/data/semeval2018-ec   # the SemEval training file
    python benchmarks/splits.py                                             # the bundled demo table
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlbert.data import (
    DEMO_LABELS_FILE,
    DEMO_TABLE_FILE,
    SEMEVAL_FILES,
    SEMEVAL_LABELS,
    read_demo_labels,
    read_demo_table,
    read_semeval_file,
    split_off,
)
from mlbert.labels import labels_to_multi_hot
from mlbert.paths import DEMO_DIR

Splitter = Callable[[pd.DataFrame, float, int, list[str]], tuple[pd.DataFrame, pd.DataFrame]]


def rarest_label_split(frame: pd.DataFrame, fraction: float, seed: int, labels: list[str]):
    """The rule `prepare` used before: stratify on each row's rarest label (kept here as the baseline)."""
    frequency = Counter(name for names in frame["labels"] for name in names)
    keys = [min(names, key=lambda n: (frequency[n], n)) if names else "" for names in frame["labels"]]
    counts = Counter(keys)
    keys = [key if counts[key] >= 2 else "<rare>" for key in keys]
    kept, held = train_test_split(np.arange(len(frame)), test_size=fraction, random_state=seed, stratify=keys)
    return frame.iloc[np.sort(kept)], frame.iloc[np.sort(held)]


def random_split(frame: pd.DataFrame, fraction: float, seed: int, labels: list[str]):
    kept, held = train_test_split(np.arange(len(frame)), test_size=fraction, random_state=seed)
    return frame.iloc[np.sort(kept)], frame.iloc[np.sort(held)]


SPLITTERS: dict[str, Splitter] = {
    "iterative stratification": split_off,
    "rarest label (before)": rarest_label_split,
    "random": random_split,
}


def gaps(part: pd.DataFrame, whole: pd.DataFrame, labels: list[str]) -> dict[str, float]:
    """Percentage-point gaps between `part` and `whole`: per label (mean, max), the rarest label's
    relative gap, and per label pair (mean)."""
    a, b = labels_to_multi_hot(part["labels"], labels), labels_to_multi_hot(whole["labels"], labels)
    label_gap = np.abs(a.mean(0) - b.mean(0))
    pair_gap = np.abs((a.T @ a) / len(a) - (b.T @ b) / len(b))[np.triu_indices(len(labels), 1)]
    rarest = int(np.argmin(b.mean(0)))
    return {
        "label gap mean (pp)": 100 * label_gap.mean(),
        "label gap max (pp)": 100 * label_gap.max(),
        "rarest label rel. gap (%)": 100 * label_gap[rarest] / b.mean(0)[rarest],
        "pair gap mean (pp)": 100 * pair_gap.mean(),
    }


def measure(frame: pd.DataFrame, labels: list[str], seeds: int, test_fraction: float, validation_fraction: float) -> pd.DataFrame:
    rows = []
    for name, splitter in SPLITTERS.items():
        for seed in range(seeds):
            train, test = splitter(frame, test_fraction, seed, labels)
            train, validation = splitter(train.reset_index(drop=True), validation_fraction / (1 - test_fraction), seed, labels)
            for part_name, part in (("test", test), ("validation", validation)):
                rows.append({"method": name, "part": part_name, "seed": seed, **gaps(part, frame, labels)})
    table = pd.DataFrame(rows)
    return table.groupby(["part", "method"], sort=False).mean(numeric_only=True).drop(columns="seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="folder with the SemEval-2018 E-c files (its training file is split)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    args = parser.parse_args()
    if args.data_dir:
        frame, labels, what = read_semeval_file(args.data_dir / SEMEVAL_FILES["train"]), list(SEMEVAL_LABELS), "SemEval-2018 E-c train"
    else:
        labels = read_demo_labels(DEMO_DIR / DEMO_LABELS_FILE)
        frame, what = read_demo_table(DEMO_DIR / DEMO_TABLE_FILE, labels), "the bundled GoEmotions demo table"
    print(f"{what}: {len(frame)} texts, {len(labels)} labels; test {args.test_fraction:g}, validation "
          f"{args.validation_fraction:g}; mean over {args.seeds} seeds (lower is closer to the whole)\n")  # fmt: skip
    print(measure(frame, labels, args.seeds, args.test_fraction, args.validation_fraction).round(3).to_markdown())


if __name__ == "__main__":
    main()
