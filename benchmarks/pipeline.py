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
    print("\n| split | micro-F1 | macro-F1 | Jaccard | exact match | ROC-AUC micro | ROC-AUC macro |")
    print("|---|---|---|---|---|---|---|")
    for split, scores in metrics.items():
        print(
            f"| {split} | {scores['f1_micro']:.3f} | {scores['f1_macro']:.3f} | {scores['jaccard']:.3f} | "
            f"{scores['accuracy']:.3f} | {scores['roc_auc_micro']:.3f} | {scores['roc_auc_macro']:.3f} |"
        )
    print("\n| label | test F1 | support |\n|---|---|---|")
    for label, scores in test["per_label"].items():
        print(f"| {label} | {scores['f1']:.3f} | {scores['support']} |")


if __name__ == "__main__":
    main()
