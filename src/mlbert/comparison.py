"""Comparing two runs on the same texts: the difference of each score and its 95% interval.

One run against another on a few hundred texts differs by chance as much as by design, and
`dvc metrics diff` shows only that two numbers differ. evaluate writes each split's per-text
probabilities (`predictions/<split>.parquet`, DVC-cached and never in git), so any two revisions
DVC knows (commits, branches, experiment names, the workspace) can be compared text by text:
the paired bootstrap resamples the texts, with the same draw for both runs, and the spread of
the resampled differences is the interval. Each run keeps its own decision thresholds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MlbertError
from .params import HEADLINE_MEAN, HEADLINE_METRICS
from .paths import THRESHOLDS_PATH
from .thresholds import objective_score

# evaluate's output, beside the others in paths.py (kept here so that adding it did not change a
# module the train stage depends on, which would have called for a retraining).
PREDICTIONS_DIR = Path("predictions")
WORKSPACE = "workspace"
COMPARED_METRICS = (*HEADLINE_METRICS, HEADLINE_MEAN)


class ComparisonError(MlbertError, ValueError):
    """Two runs cannot be compared: a file is missing at a revision, or the texts differ."""


def prediction_frame(ids: Sequence[str], gold: Sequence[Sequence[str]], probabilities: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """One row per text: its id, its gold label names, and one probability column per label."""
    frame = pd.DataFrame({"id": list(ids), "gold": [list(names) for names in gold]})
    columns = pd.DataFrame(np.asarray(probabilities, dtype=np.float32), columns=list(labels))
    return pd.concat([frame, columns], axis=1)


@dataclass(frozen=True)
class Run:
    """One revision's predictions on a split, with the thresholds it applies."""

    rev: str
    ids: list[str]
    labels: list[str]
    gold: np.ndarray  # (texts, labels) 0/1
    probabilities: np.ndarray  # (texts, labels)
    thresholds: np.ndarray  # (labels,)

    @property
    def decisions(self) -> np.ndarray:
        return (self.probabilities >= self.thresholds).astype(np.int8)


def read_run(rev: str, split: str, repo: str = ".") -> Run:
    """The predictions evaluate wrote for `split` at `rev` (a commit, branch, tag, experiment
    name, or "workspace"), read through DVC (its cache, else its remote)."""
    path = str(PREDICTIONS_DIR / f"{split}.parquet")
    table = pd.read_parquet(io.BytesIO(_read(path, rev, repo, "rb")))
    rule = json.loads(_read(str(THRESHOLDS_PATH), rev, repo, "r"))
    labels = [column for column in table.columns if column not in ("id", "gold")]
    index = {label: j for j, label in enumerate(labels)}
    gold = np.zeros((len(table), len(labels)), dtype=np.int8)
    for row, names in enumerate(table["gold"]):
        gold[row, [index[name] for name in names]] = 1
    per_label = rule.get("per_label") or {}
    thresholds = np.array([per_label.get(label, rule["default"]) for label in labels], dtype=np.float32)
    probabilities = table[labels].to_numpy(dtype=np.float32)
    return Run(rev, table["id"].astype(str).tolist(), labels, gold, probabilities, thresholds)


def _read(path: str, rev: str, repo: str, mode: str):
    if rev == WORKSPACE:
        target = Path(repo) / path
        if not target.is_file():
            raise ComparisonError(f"{target} not found in the workspace: run `dvc repro` first")
        return target.read_bytes() if mode == "rb" else target.read_text(encoding="utf-8")
    import dvc.api

    try:
        return dvc.api.read(path, repo=repo, rev=rev, mode=mode)
    except Exception as error:  # dvc raises several kinds: unknown revision, path not found, not in cache
        raise ComparisonError(
            f"cannot read {path} at {rev!r} ({type(error).__name__}: {str(error)[:200]}); it is written by "
            "evaluate: the revision must have run it, and its outputs must be in the DVC cache or remote"
        ) from error


def scores(run: Run, rows: np.ndarray | None = None) -> dict[str, float]:
    """Each compared metric of `run` on `rows` (all texts by default), as sklearn counts them."""
    gold, decided = (run.gold, run.decisions) if rows is None else (run.gold[rows], run.decisions[rows])
    return {metric: objective_score(gold, decided, metric) for metric in COMPARED_METRICS}


def paired_bootstrap(
    a: Run, b: Run, samples: int = 2000, seed: int = 0, level: float = 0.95, progress: bool = False
) -> dict[str, dict[str, float]]:
    """Per metric: a's and b's score, b - a, and the `level` percentile interval of b - a over
    `samples` resamplings of the texts (the same texts for both runs in each resampling);
    `progress`: a bar over the resamplings on stderr."""
    from tqdm.auto import trange

    check_same_texts(a, b)
    rng = np.random.default_rng(seed)
    draws = {metric: np.empty(samples) for metric in COMPARED_METRICS}
    for k in trange(samples, desc="bootstrap", unit="resample", disable=not progress, leave=False):
        rows = rng.integers(0, len(a.ids), len(a.ids))
        first, second = scores(a, rows), scores(b, rows)
        for metric in COMPARED_METRICS:
            draws[metric][k] = second[metric] - first[metric]
    whole_a, whole_b = scores(a), scores(b)
    tail = (1.0 - level) / 2 * 100
    return {
        metric: {
            "a": whole_a[metric],
            "b": whole_b[metric],
            "difference": whole_b[metric] - whole_a[metric],
            "low": float(np.percentile(draws[metric], tail)),
            "high": float(np.percentile(draws[metric], 100 - tail)),
        }
        for metric in COMPARED_METRICS
    }


def check_same_texts(a: Run, b: Run) -> None:
    if a.labels != b.labels:
        raise ComparisonError(f"{a.rev} and {b.rev} have different labels: {a.labels} vs {b.labels}")
    if a.ids != b.ids:
        raise ComparisonError(
            f"{a.rev} and {b.rev} scored different texts ({len(a.ids)} vs {len(b.ids)}, or another order): "
            "a paired comparison needs the same split of the same data"
        )
