"""Time the default pipeline stage by stage on the real data and print its test scores.

    python benchmarks/pipeline.py --data-dir ../shared/data/semeval2018-ec [--force]

Run from the repository root with the project's environment on PATH (`make setup`, then
`PATH=.venv/bin:$PATH`). The official files are linked (not copied) into `prepare.dir`
(data/raw, which git ignores), so the run uses the committed params unchanged and its dvc.lock
and metrics.json are the ones to commit. Each stage runs as `dvc repro --single-item <stage>`:
the wall time includes process start, imports and DVC's own bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mlbert.data import SEMEVAL_FILES
from mlbert.params import load_params

STAGES = ("prepare", "tokenize", "train", "evaluate", "export")
# Published test scores on SemEval-2018 E-c (Jaccard, micro-F1, macro-F1), quoted, not rerun here.
ANCHORS = {
    "NTUA-SLP (SemEval-2018 winner)": (0.588, 0.701, 0.528),
    "SpanEmo (bert-base, EACL 2021)": (0.601, 0.713, 0.578),
    "cardiffnlp twitter-roberta-base multi-label": (0.597, 0.717, 0.546),
}
TARGET = (0.59, 0.70, 0.56)


def link_official_files(data_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in SEMEVAL_FILES.values():
        source, link = (data_dir / name).resolve(), target / name
        if not source.is_file():
            sys.exit(f"--data-dir {data_dir}: {name} not found")
        if not link.exists():
            link.symlink_to(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="folder with the official SemEval-2018 E-c files")
    parser.add_argument("--force", action="store_true", help="rerun stages even if DVC has them cached")
    args = parser.parse_args()

    if args.data_dir is not None:
        link_official_files(args.data_dir, Path(load_params().prepare.dir))
    timings = {}
    for stage in STAGES:
        command = [sys.executable, "-m", "dvc", "repro", "--single-item", stage, *(["--force"] if args.force else [])]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        timings[stage] = time.perf_counter() - started

    metrics = json.loads(Path("metrics.json").read_text())
    test = metrics["test"]
    print("\n| stage | wall time |\n|---|---|")
    for stage, seconds in timings.items():
        print(f"| {stage} | {seconds / 60:.1f} min ({seconds:.0f} s) |")
    print(f"| **total** | **{sum(timings.values()) / 60:.1f} min** |")
    rule = metrics["thresholds"]
    print(f"\nThresholds: {rule['rule']} ({rule['objective']}), global {rule['default']}")
    print("\n| split, rule | Jaccard | micro-F1 | macro-F1 | exact match |")
    print("|---|---|---|---|---|")
    for split in ("validation", "test"):
        for name, scores in ((rule["rule"], metrics[split]), ("0.5", metrics[split]["at_0_5"])):
            print(
                f"| {split}, {name} | {scores['jaccard']:.3f} | {scores['f1_micro']:.3f} | "
                f"{scores['f1_macro']:.3f} | {scores['accuracy']:.3f} |"
            )
    print(f"\nROC-AUC on test: micro {test['roc_auc_micro']:.3f}, macro {test['roc_auc_macro']:.3f}")
    print("\n| test (3259 tweets) | Jaccard | micro-F1 | macro-F1 |\n|---|---|---|---|")
    print(f"| **this pipeline** | **{test['jaccard']:.3f}** | **{test['f1_micro']:.3f}** | **{test['f1_macro']:.3f}** |")
    for name, (jaccard, micro, macro) in ANCHORS.items():
        print(f"| {name} | {jaccard:.3f} | {micro:.3f} | {macro:.3f} |")
    met = [ours >= goal for ours, goal in zip((test["jaccard"], test["f1_micro"], test["f1_macro"]), TARGET)]
    print(f"\nTarget Jaccard >= {TARGET[0]}, micro-F1 >= {TARGET[1]}, macro-F1 >= {TARGET[2]}: "
          + ", ".join("met" if ok else "missed" for ok in met))
    print("\n| label | test F1 | precision | recall | threshold | support |\n|---|---|---|---|---|---|")
    for label, scores in test["per_label"].items():
        print(
            f"| {label} | {_fmt(scores['f1'])} | {_fmt(scores['precision'])} | {_fmt(scores['recall'])} | "
            f"{rule['per_label'][label]:.2f} | {scores['support']} |"
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
