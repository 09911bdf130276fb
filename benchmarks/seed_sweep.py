"""Score a setting as a mean over seeds: one named DVC experiment per seed, timed, then summarised.

    python benchmarks/seed_sweep.py --name default                       # seeds 42 43 44
    python benchmarks/seed_sweep.py --name no-hashtags -S normalise.hashtags=strip
    python benchmarks/seed_sweep.py --name default --calibrate ../shared/tools/calibrate.py
    python benchmarks/seed_sweep.py --name ep4 -S train.num_train_epochs=4 --until evaluate

Run from the repository root with the project's environment on PATH, the data where params.yaml
expects it (data/raw for SemEval). Each seed is `dvc exp run -n <name>-s<seed> -S train.seed=<seed>`
in the workspace (where the data is), one after another: never in parallel on a small CPU. The
experiments stay in DVC (`dvc exp show`, `summarise-seeds <names>`, `compare-runs`, `dvc exp apply`).
At the end params.yaml and dvc.lock are put back as they were (and unstaged), the git-tracked
outputs that were as committed before (metrics.json, dvclive/, plots/) are again, and the DVC
outputs are checked out from the cache to match. Prints the wall time of each run, the CPU calibration before and after
(with `--calibrate`, a script that prints training samples/s, run with and without `--fp32`),
and the mean ± sample standard deviation per score on validation and test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mlbert.seeds import group_by_all_but_seed, read_experiment, summary_table

RESTORED = ("params.yaml", "dvc.lock")


def write_back(saved: dict[str, bytes]) -> None:
    """Put each file of RESTORED back as it was read before the sweep."""
    for name, content in saved.items():
        Path(name).write_bytes(content)


def calibration(script: Path | None) -> list[str]:
    if script is None:
        return []
    lines = []
    for extra in ([], ["--fp32"]):
        result = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True, check=True)
        lines += [line for line in result.stdout.splitlines() if line.startswith("calibration")]
    return lines


def tracked_clean_files() -> set[str]:
    """The files git tracks that are as committed."""
    listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, check=True).stdout
    dirty = subprocess.run(["git", "diff", "HEAD", "--name-only", "-z"], capture_output=True, text=True, check=True).stdout
    return set(filter(None, listed.split("\0"))) - set(filter(None, dirty.split("\0")))


def git_tracked_outputs() -> tuple[str, ...]:
    """The stage outputs that git holds (metrics and plots with `cache: false`), from dvc.yaml."""
    stages = yaml.safe_load(Path("dvc.yaml").read_text(encoding="utf-8"))["stages"]
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                if (options or {}).get("cache") is False:
                    paths.append(path)
    return tuple(paths)


def training_facts(rev: str) -> dict:
    """What the train stage recorded about its own run: time, precision, machine."""
    import dvc.api

    live = json.loads(dvc.api.read("dvclive/metrics.json", rev=rev))
    return {key: live[key] for key in ("train_runtime_s", "bf16", "bf16_probe", "machine") if key in live}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="experiment name prefix: <name>-s<seed>")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("-S", "--set-param", action="append", default=[], help="a param override, as for dvc exp run")
    parser.add_argument("--calibrate", type=Path, help="a calibration script to run before and after")
    parser.add_argument("--json", type=Path, help="also write the timings and the summary here")
    parser.add_argument(
        "--until",
        metavar="STAGE",
        help="run the pipeline only up to this stage (e.g. evaluate: the scores do not depend on export)",
    )
    args = parser.parse_args(argv)

    saved = {name: Path(name).read_bytes() for name in RESTORED}
    clean = tracked_clean_files()  # the run's git-tracked outputs (metrics.json, dvclive/, plots/) among them
    before = calibration(args.calibrate)
    names, wall = [], {}
    try:
        for seed in args.seeds:
            name = f"{args.name}-s{seed}"
            overrides = [item for value in (*args.set_param, f"train.seed={seed}") for item in ("-S", value)]
            # Each seed starts from the params as they were: DVC leaves the last run's overrides in
            # params.yaml, and a `+key=value` (a key params.yaml lacks) would fail the second time.
            write_back(saved)
            start = time.perf_counter()
            target = [args.until] if args.until else []
            subprocess.run(["dvc", "exp", "run", "-n", name, *overrides, *target], check=True)
            wall[name] = time.perf_counter() - start
            names.append(name)
            print(f"seed_sweep: {name} took {wall[name] / 60:.1f} min", flush=True)
    finally:
        write_back(saved)
        subprocess.run(["git", "reset", "--quiet", "--", *RESTORED], check=False)  # undo DVC's autostage
        outputs = git_tracked_outputs()  # only what the pipeline writes: an edit made meanwhile stays
        changed = sorted(path for path in clean - tracked_clean_files() if path.startswith(outputs))
        if changed:
            subprocess.run(["git", "checkout", "--", *changed], check=False)
        subprocess.run(["dvc", "checkout", "--quiet"], check=False)
    after = calibration(args.calibrate)

    experiments = [read_experiment(name) for name in names]
    runs = {name: {"wall_s": round(wall[name], 1), **training_facts(name)} for name in names}
    groups = group_by_all_but_seed(experiments)
    if before:
        print("\n".join(["", "calibration before:", *before, "calibration after:", *after]))
    print("\n| run | wall time | train | bf16 | test jaccard / f1_micro / f1_macro |\n|---|---|---|---|---|")
    for experiment in experiments:
        run, scores = runs[experiment.rev], experiment.scores
        print(
            f"| {experiment.rev} | {run['wall_s'] / 60:.1f} min | {run.get('train_runtime_s', 0):.0f} s | {run.get('bf16')} | "
            + " / ".join(f"{scores[f'test.{key}']:.4f}" for key in ("jaccard", "f1_micro", "f1_macro"))
            + " |"
        )
    for split in ("validation", "test"):
        print(f"\n{split}:\n{summary_table(groups, split)}")
    if args.json:
        summary = {
            "runs": runs,
            "calibration": {"before": before, "after": after},
            "scores": {name: experiment.scores for name, experiment in zip(names, experiments)},
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
