"""Does a change keep the pipeline's results bit-identical? Runs prepare, tokenize, train and
evaluate of a base revision and of the working tree on the same slice of data, on this machine
(numerics differ between CPU kinds, so only a same-machine comparison means anything), and
compares the trained weights and metrics.json.

    python benchmarks/equivalence.py --base f94f0c9 --data-dir ../shared/data/semeval2018-ec

The slice (1600 training texts, 400 for validation and test, max_length 64, 3 epochs) is large
enough for the model to learn, so selection, averaging and thresholds all come into play.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

STAGES = ("prepare", "tokenize_splits", "train", "evaluate")
SLICE = {
    "prepare": {"max_train_samples": 1600, "max_eval_samples": 400},
    "tokenize": {"max_length": 64},
    "train": {"num_train_epochs": 3, "logging_steps": 5},
}


def run_pipeline(tree: Path, scratch: Path, data_dir: Path) -> None:
    """Run the stages of the checkout `tree` (its own package on PYTHONPATH) in `scratch`."""
    shutil.copytree(tree / "stages", scratch / "stages")
    params = yaml.safe_load((tree / "params.yaml").read_text(encoding="utf-8"))
    params["prepare"].update(dir=str(data_dir), source="semeval", **SLICE["prepare"])
    for group in ("tokenize", "train"):
        params[group].update(SLICE[group])
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "HF_HUB_OFFLINE": "1"}
    for stage in STAGES:
        result = subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=scratch, env=env, capture_output=True, text=True, check=False)
        summary = [line for line in result.stdout.splitlines() if line.startswith(stage.split("_")[0])]
        print(f"  {' '.join(summary) or result.stderr.strip()[-400:]}", flush=True)
        if result.returncode != 0:
            raise SystemExit(f"{tree}: {stage} failed")


def differences(before: object, after: object, where: str = "") -> list[str]:
    """Paths at which two JSON documents differ, with both values."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += differences(before.get(key), after.get(key), f"{where}.{key}" if where else key)
        return found
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with the SemEval-2018 E-c files")
    args = parser.parse_args(argv)
    root = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(scratch / "base-tree"), args.base], check=True)
        try:
            for name, tree in (("base", scratch / "base-tree"), ("work", root)):
                print(f"{name} ({args.base if name == 'base' else 'working tree'}):", flush=True)
                (scratch / name).mkdir()
                run_pipeline(tree, scratch / name, args.data_dir.resolve())
            weights = [(scratch / name / "models/trained/model.safetensors").read_bytes() for name in ("base", "work")]
            metrics = [json.loads((scratch / name / "metrics.json").read_text()) for name in ("base", "work")]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(scratch / "base-tree")], check=False)
    print(f"trained weights: {'bit-identical' if weights[0] == weights[1] else 'DIFFERENT'}")
    changed = differences(*metrics)
    print("metrics.json: " + ("identical" if not changed else f"{len(changed)} difference(s)"))
    for line in changed:
        print(f"  {line}")
    return 0 if weights[0] == weights[1] else 1


if __name__ == "__main__":
    sys.exit(main())
