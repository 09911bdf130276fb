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
from typing import Any

from mlbert.data import SEMEVAL_FILES
from mlbert.metrics import format_score
from mlbert.params import HEADLINE_METRICS, load_params
from mlbert.paths import METRICS_PATH

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


def report(timings: dict[str, float], metrics: dict[str, Any]) -> str:
    """The stage timings and the scores in `metrics` (as the evaluate stage writes them), as tables."""
    test, rule = metrics["test"], metrics["thresholds"]
    lines = ["| stage | wall time |", "|---|---|"]
    lines += [f"| {stage} | {seconds / 60:.1f} min ({seconds:.0f} s) |" for stage, seconds in timings.items()]
    lines.append(f"| **total** | **{sum(timings.values()) / 60:.1f} min** |")
    lines.append(f"\nThresholds: {rule['rule']} ({rule['objective']}), global {rule['default']}")
    lines += ["\n| split, rule | Jaccard | micro-F1 | macro-F1 | exact match |", "|---|---|---|---|---|"]
    for split in ("validation", "test"):
        for name, scores in ((rule["rule"], metrics[split]), ("0.5", metrics[split]["at_0_5"])):
            cells = (format_score(scores[key]) for key in (*HEADLINE_METRICS, "accuracy"))
            lines.append(f"| {split}, {name} | " + " | ".join(cells) + " |")
    lines.append(
        f"\nROC-AUC on test: micro {format_score(test['roc_auc_micro'])}, macro {format_score(test['roc_auc_macro'])}"
    )
    lines += [f"\n| test ({test['n_examples']} texts) | Jaccard | micro-F1 | macro-F1 |", "|---|---|---|---|"]
    ours = (test["jaccard"], test["f1_micro"] or 0.0, test["f1_macro"] or 0.0)
    lines.append("| **this pipeline** | " + " | ".join(f"**{value:.3f}**" for value in ours) + " |")
    lines += [f"| {name} | {jaccard:.3f} | {micro:.3f} | {macro:.3f} |" for name, (jaccard, micro, macro) in ANCHORS.items()]
    met = ["met" if value >= goal else "missed" for value, goal in zip(ours, TARGET)]
    lines.append(
        f"\nTarget Jaccard >= {TARGET[0]}, micro-F1 >= {TARGET[1]}, macro-F1 >= {TARGET[2]}: " + ", ".join(met)
    )
    lines += ["\n| label | test F1 | precision | recall | threshold | support |", "|---|---|---|---|---|---|"]
    for label, scores in test["per_label"].items():
        lines.append(
            f"| {label} | {format_score(scores['f1'])} | {format_score(scores['precision'])} | "
            f"{format_score(scores['recall'])} | {rule['per_label'][label]:.2f} | {scores['support']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="folder with the official SemEval-2018 E-c files")
    parser.add_argument("--force", action="store_true", help="rerun stages even if DVC has them cached")
    args = parser.parse_args(argv)

    if args.data_dir is not None:
        link_official_files(args.data_dir, Path(load_params().prepare.dir))
    timings = {}
    for stage in STAGES:
        command = [sys.executable, "-m", "dvc", "repro", "--single-item", stage, *(["--force"] if args.force else [])]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        timings[stage] = time.perf_counter() - started
    print("\n" + report(timings, json.loads(METRICS_PATH.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
