"""Scores over seeds: a group of DVC experiments summarised as mean and standard deviation.

One run is not a result here: the seed moves each score by about as much as most changes do. A
seed sweep is plain DVC (`dvc exp run --queue -S train.seed=42,43,44`); this module reads the
experiments back (params and metrics.json at each, through DVC), groups those whose params differ
only in the seed, and gives each metric's mean, sample standard deviation and range per group.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import MlbertError
from .metrics import headline_mean
from .params import HEADLINE_MEAN, HEADLINE_METRICS

SEED_KEYS = ("train.seed",)
SPLITS = ("validation", "test")


class SeedSummaryError(MlbertError, ValueError):
    """Experiments cannot be read or summarised; the message names the revision."""


@dataclass(frozen=True)
class Experiment:
    rev: str
    params: dict[str, object]  # flat: "train.seed" -> 42
    scores: dict[str, float]  # flat: "test.jaccard" -> 0.58


@dataclass
class Group:
    """Experiments whose params differ only in the seed."""

    varying: dict[str, object]  # the params (other than the seed) that set this group apart
    members: list[Experiment] = field(default_factory=list)

    def summary(self, key: str) -> tuple[float, float | None, float, float] | None:
        """(mean, sample std, min, max) of `key` over the members that have it; the std is None
        for a single run, which has no spread to measure."""
        values = [member.scores[key] for member in self.members if member.scores.get(key) is not None]
        if not values:
            return None
        spread = statistics.stdev(values) if len(values) > 1 else None
        return statistics.fmean(values), spread, min(values), max(values)

    def check_one_run_per_seed(self) -> None:
        """SeedSummaryError if two members share a seed: a rerun of one seed (or one revision named
        twice) is not another seed, and counting it would shrink the spread."""
        by_seed: dict[str, list[str]] = {}
        for member in self.members:
            by_seed.setdefault(repr(member.params.get(SEED_KEYS[0])), []).append(member.rev)
        repeated = {seed: revs for seed, revs in by_seed.items() if len(revs) > 1}
        if repeated:
            seed, revs = next(iter(repeated.items()))
            raise SeedSummaryError(f"{' and '.join(revs)} have the same seed ({seed}); summarise one run per seed")


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def scores_of(metrics: dict) -> dict[str, float]:
    """The headline scores of metrics.json, with their mean, per split: "test.jaccard" -> value."""
    found = {}
    for split in SPLITS:
        values = metrics.get(split) or {}
        headline = {key: values.get(key) for key in HEADLINE_METRICS}
        found.update({f"{split}.{key}": value for key, value in headline.items()})
        found[f"{split}.{HEADLINE_MEAN}"] = headline_mean(headline) if values else None
    return found


def read_experiment(rev: str, repo: str = ".") -> Experiment:
    """Params and metrics.json at `rev` (an experiment name, commit or branch), through DVC."""
    import dvc.api

    try:
        params = dvc.api.params_show(repo=repo, rev=rev)
        metrics = json.loads(dvc.api.read("metrics.json", repo=repo, rev=rev))
    except Exception as error:  # dvc raises several kinds: unknown revision, file not at that revision
        raise SeedSummaryError(f"cannot read params and metrics.json at {rev!r} ({type(error).__name__}: {str(error)[:200]})") from error
    return Experiment(rev, flatten(params), scores_of(metrics))


def experiments_of(baseline: str = "HEAD", repo: str = ".") -> list[str]:
    """The names of the experiments based on `baseline`, as `dvc exp ls` lists them."""
    from dvc.repo import Repo

    try:
        with Repo(repo) as dvc_repo:
            listed = dvc_repo.experiments.ls(rev=baseline)
    except Exception as error:  # dvc's own kinds: not a DVC repo, an unknown revision
        raise SeedSummaryError(f"cannot list the experiments of {baseline!r} ({type(error).__name__}: {str(error)[:200]})") from error
    return [name or sha for entries in listed.values() for name, sha in entries]


def group_by_all_but_seed(experiments: Iterable[Experiment], seed_keys: Sequence[str] = SEED_KEYS) -> list[Group]:
    """Groups of experiments whose params are equal once the seed keys are left out."""
    experiments = list(experiments)
    keys = sorted({key for experiment in experiments for key in experiment.params} - set(seed_keys))
    varying = [key for key in keys if len({repr(e.params.get(key)) for e in experiments}) > 1]
    groups: dict[str, Group] = {}
    for experiment in experiments:
        setting = {key: experiment.params.get(key) for key in varying}
        groups.setdefault(repr(sorted(setting.items())), Group(setting)).members.append(experiment)
    for group in groups.values():
        group.check_one_run_per_seed()
    return list(groups.values())


def summary_table(groups: Sequence[Group], split: str = "test") -> str:
    """A markdown table: one row per group, mean ± std (and range) of each headline score."""
    metrics = (*HEADLINE_METRICS, HEADLINE_MEAN)
    lines = [
        f"| group | seeds | {' | '.join(f'{split} {metric}' for metric in metrics)} |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for group in groups:
        name = ", ".join(f"{key}={value}" for key, value in group.varying.items()) or "(all the same but the seed)"
        seeds = ", ".join(str(member.params.get(SEED_KEYS[0])) for member in group.members)
        cells = []
        for metric in metrics:
            summary = group.summary(f"{split}.{metric}")
            cells.append(format_summary(summary))
        lines.append(f"| {name} | {seeds} | {' | '.join(cells)} |")
    return "\n".join(lines)


def format_summary(summary: tuple[float, float | None, float, float] | None) -> str:
    """A table cell: "mean ± std (min–max)"; one run: its score and "(one run)"."""
    if summary is None:
        return "n/a"
    mean, spread, low, high = summary
    if spread is None:
        return f"{mean:.4f} (one run)"
    return f"{mean:.4f} ± {spread:.4f} ({low:.4f}–{high:.4f})"
