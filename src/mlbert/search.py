"""`search`: a guided sweep. Optuna (TPE) proposes each trial's params from the space in
search.yaml, every trial runs as a DVC experiment, and the objective is read back from its
metrics.json (validation only; test never chooses anything).

    search                                   # search.yaml's space and trials, study "search" in search.db
    search --trials 30 --study lr-epochs     # more trials; a new study name starts a new search
    search --storage postgresql://user@db/optuna --push origin   # several machines, one study

Each trial is `dvc exp run --temp --name <study>-<number> -S key=value ...`: the workspace is
left as it is, `dvc exp show` lists every finished trial with its params and metrics, DVC's
run-cache serves any stage a trial shares with an earlier run, and `--push` shares each trial
with `dvc exp push`. The train stage reports each epoch's validation score to the study and a
trial below the median of the earlier ones at that epoch stops there (Optuna's median pruner).

The study lives in the storage (default sqlite:///search.db, beside dvc.yaml): run the same command
again after an interruption and it goes on; an interrupted trial is run again. Machines that share
a database URL share one study, each trial still a DVC experiment.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import MlbertError
from .metrics import headline_mean
from .params import (
    HEADLINE_MEAN,
    HEADLINE_METRICS,
    PARAMS_FILE,
    load_params,
    params_from_dict,
)
from .trial_pruning import PRUNED_ATTR, TRIAL_ENV, make_pruner

SEARCH_FILE = "search.yaml"
DEFAULT_STORAGE = "sqlite:///search.db"
OBJECTIVES = (*HEADLINE_METRICS, HEADLINE_MEAN)
INTERRUPTED_ATTR = "interrupted"
RETRY_ATTR = "retry_of"
EXPERIMENT_ATTR = "experiment"


class SearchError(MlbertError):
    """search.yaml or the command line asks for something that cannot run."""


@dataclass(frozen=True)
class Dimension:
    """One params.yaml key and the values a trial may give it."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def kind(self) -> str:
        """categorical (choices), int (both ends written as integers) or float."""
        if self.choices:
            return "categorical"
        return "int" if isinstance(self.low, int) and isinstance(self.high, int) else "float"

    def bounds(self) -> list[Any]:
        """The values that params validation must accept for every trial to be valid."""
        return list(self.choices) if self.choices else [self.low, self.high]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)


@dataclass(frozen=True)
class SearchConfig:
    objective: str
    trials: int
    startup_trials: int
    warmup_epochs: int
    space: tuple[Dimension, ...]

    @property
    def pruner(self) -> dict[str, int]:
        return {"startup_trials": self.startup_trials, "warmup_epochs": self.warmup_epochs}


def read_config(path: Path, params_path: Path = Path(PARAMS_FILE)) -> SearchConfig:
    """search.yaml, checked before any trial runs: every key of the space is in params.yaml, and
    params validation accepts both ends of its range (or each of its choices)."""
    if not path.is_file():
        raise SearchError(f"{path}: file not found (it holds the search space; see the one in the repository)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SearchError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise SearchError(f"{path}: expected a mapping with objective, trials, pruner and space")
    unknown = set(raw) - {"objective", "trials", "pruner", "space"}
    if unknown:
        raise SearchError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (known: objective, trials, pruner, space)")
    objective = raw.get("objective", HEADLINE_MEAN)
    if objective not in OBJECTIVES:
        raise SearchError(f"{path}: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    trials = _positive_int(raw.get("trials", 20), f"{path}: trials")
    pruner = raw.get("pruner") or {}
    if not isinstance(pruner, dict) or set(pruner) - {"startup_trials", "warmup_epochs"}:
        raise SearchError(f"{path}: pruner takes startup_trials and warmup_epochs, got {pruner!r}")
    startup = _positive_int(pruner.get("startup_trials", 3), f"{path}: pruner.startup_trials", allow_zero=True)
    warmup = _positive_int(pruner.get("warmup_epochs", 1), f"{path}: pruner.warmup_epochs", allow_zero=True)
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise SearchError(f"{path}: space must map params.yaml keys (like train.learning_rate) to ranges or choices")
    dimensions = tuple(_dimension(key, spec, path) for key, spec in space.items())
    _check_against_params(dimensions, params_path, path)
    return SearchConfig(objective, trials, startup, warmup, dimensions)


def _positive_int(value: Any, where: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise SearchError(f"{where} must be an integer {'>= 0' if allow_zero else '>= 1'}, got {value!r}")
    return value


def _dimension(key: Any, spec: Any, path: Path) -> Dimension:
    where = f"{path}: space.{key}"
    if not isinstance(key, str) or "." not in key:
        raise SearchError(f"{where}: a key is a params.yaml group and key, like train.learning_rate")
    if not isinstance(spec, dict):
        raise SearchError(f"{where}: expected {{low, high[, log, step]}} or {{choices: [...]}}, got {spec!r}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise SearchError(f"{where}: choices must be a non-empty list and stand alone")
        return Dimension(key, choices=tuple(choices))
    unknown = set(spec) - {"low", "high", "log", "step"}
    if unknown or "low" not in spec or "high" not in spec:
        raise SearchError(f"{where}: expected low and high (and optionally log, step), got {sorted(spec)}")
    low, high = spec["low"], spec["high"]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or low >= high:
        raise SearchError(f"{where}: low and high must be numbers with low < high, got {low!r} and {high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        raise SearchError(f"{where}: log must be true or false, and a log range must be above 0")
    return Dimension(key, low=low, high=high, log=log, step=spec.get("step"))


def _check_against_params(dimensions: Sequence[Dimension], params_path: Path, path: Path) -> None:
    """Each key exists in params.yaml, and params validation accepts every end of every range."""
    base = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    for dimension in dimensions:
        group, _, name = dimension.key.partition(".")
        if group not in base or not isinstance(base[group], dict) or name not in base[group]:
            raise SearchError(f"{path}: space.{dimension.key} is not a key in {params_path}")
        for value in dimension.bounds():
            trial_params = {**base, group: {**base[group], name: value}}
            try:
                params_from_dict(trial_params)
            except MlbertError as error:
                raise SearchError(f"{path}: space.{dimension.key} = {value!r} is not a valid param: {error}") from error


def check_data_reaches_trials(data_dir: str) -> None:
    """Trials run in DVC's clean temporary copies of the repository, which hold only what git and
    DVC track. Data that is neither (git-ignored files, as the SemEval licence asks for) would be
    missing there, and `prepare.source: auto` would quietly train on something else."""
    folder = Path(data_dir)
    if folder.is_absolute() or Path(f"{data_dir}.dvc").is_file():
        return
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", data_dir],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    if listed:
        raise SearchError(
            f"prepare.dir {data_dir} holds files that neither git nor DVC tracks ({listed[0]}, ...); each trial runs "
            f"in a clean temporary copy of the repository, where they would be missing. Track them "
            f"(`dvc add {data_dir}`) or set prepare.dir to an absolute path."
        )


def absolute_storage(url: str) -> str:
    """A relative SQLite URL made absolute: trials run in DVC's temporary copies of the repository,
    and each must reach the same database file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def set_args(params: Mapping[str, Any]) -> list[str]:
    """`-S key=value` for each param, values in YAML so that DVC reads them back as written."""
    pairs = []
    for key, value in params.items():
        pairs += ["-S", f"{key}={json.dumps(value) if isinstance(value, str) else repr(value)}"]
    return pairs


def objective_value(metrics: Mapping[str, Any], objective: str) -> float:
    """The validation score a trial is judged on, from its metrics.json (tuned thresholds)."""
    scores = metrics["validation"]
    return headline_mean(scores) if objective == HEADLINE_MEAN else float(scores[objective] or 0.0)


def experiment_name(study: str, number: int) -> str:
    return f"{study}-{number}"


def run_trial(
    trial: Any, config: SearchConfig, study: str, storage: str, push: str | None, dvc_command: Sequence[str]
) -> float:
    """One trial as a DVC experiment; its validation objective, or optuna.TrialPruned."""
    import dvc.api
    import optuna

    params = {dimension.key: dimension.suggest(trial) for dimension in config.space}
    name = experiment_name(study, trial.number)
    trial.set_user_attr(EXPERIMENT_ATTR, name)
    shown = ", ".join(f"{key}={value!r}" for key, value in params.items())
    print(f"search: trial {trial.number} ({name}): {shown}", flush=True)
    environment = {
        **os.environ,
        TRIAL_ENV: json.dumps(
            {"storage": storage, "study": study, "number": trial.number, "metric": config.objective, "pruner": config.pruner}
        ),
    }
    command = [*dvc_command, "exp", "run", "--temp", "--name", name, *set_args(params)]
    try:
        result = subprocess.run(command, env=environment, check=False)
    except KeyboardInterrupt:
        trial.set_user_attr(INTERRUPTED_ATTR, True)  # run again when the search resumes
        raise
    if result.returncode != 0:
        # the train stage, in its own process, wrote this to the storage when it pruned the trial
        pruned_after = trial.study._storage.get_trial(trial._trial_id).user_attrs.get(PRUNED_ATTR)
        if pruned_after is not None:
            print(f"search: trial {trial.number} pruned after epoch {pruned_after}", flush=True)
            raise optuna.TrialPruned()
        raise SearchError(f"trial {trial.number}: `{' '.join(command)}` failed with exit code {result.returncode}")
    metrics = json.loads(dvc.api.read("metrics.json", rev=name))
    value = objective_value(metrics, config.objective)
    print(f"search: trial {trial.number} ({name}): validation {config.objective} {value:.4f}", flush=True)
    if push:
        subprocess.run([*dvc_command, "exp", "push", push, name], check=True)
    return value


def requeue_interrupted(study: Any) -> int:
    """Queue again the params of each trial an interruption stopped (once); how many were."""
    retried = {trial.user_attrs.get(RETRY_ATTR) for trial in study.trials}
    interrupted = [t for t in study.trials if t.user_attrs.get(INTERRUPTED_ATTR) and t.number not in retried]
    for trial in interrupted:
        study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
    return len(interrupted)


def summary_table(study: Any, objective: str) -> str:
    """Every trial: its state, its objective, its params, its experiment; the best marked."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value).number if done else None
    keys = sorted({key for trial in study.trials for key in trial.params})
    lines = [
        f"| trial | state | validation {objective} | {' | '.join(keys)} | experiment |",
        "|---|---|---|" + "---|" * len(keys) + "---|",
    ]
    for trial in study.trials:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        if trial.state == optuna.trial.TrialState.PRUNED:
            epochs = trial.user_attrs.get(PRUNED_ATTR)
            value = f"pruned after epoch {epochs}" if epochs is not None else "pruned"
        params = " | ".join(f"{trial.params[key]:.4g}" if isinstance(trial.params.get(key), float) else str(trial.params.get(key, "")) for key in keys)
        mark = " (best)" if trial.number == best else ""
        # only a finished trial is an experiment: a pruned or failed one left nothing in `dvc exp show`
        experiment = trial.user_attrs.get(EXPERIMENT_ATTR, "") if trial.state == optuna.trial.TrialState.COMPLETE else "-"
        lines.append(f"| {trial.number}{mark} | {trial.state.name.lower()} | {value} | {params} | {experiment} |")
    return "\n".join(lines)


def finished_states() -> tuple[Any, ...]:
    """The trial states that count toward --trials: complete and pruned."""
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def finished_trials(study: Any) -> int:
    return sum(t.state in finished_states() for t in study.trials)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="search", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path(SEARCH_FILE), help=f"the search space (default: {SEARCH_FILE})")
    parser.add_argument("--study", default="search", help="the study's name; trials are named <study>-<number> (default: search)")
    parser.add_argument("--storage", default=os.environ.get("MLBERT_SEARCH_STORAGE", DEFAULT_STORAGE),
                        help=f"Optuna storage URL shared by every machine of one search (default: $MLBERT_SEARCH_STORAGE or {DEFAULT_STORAGE})")  # fmt: skip
    parser.add_argument("--trials", type=int, help="finished trials (pruned ones count) the study should reach (default: search.yaml's)")
    parser.add_argument("--seed", type=int, help="the sampler's seed, for a repeatable search; give each machine its own (default: random)")
    parser.add_argument("--push", metavar="GIT_REMOTE", help="`dvc exp push` each finished trial to this git remote")
    args = parser.parse_args(argv)
    args.storage = absolute_storage(args.storage)
    try:
        config = read_config(args.config)
        if args.trials is not None and args.trials < 1:
            raise SearchError(f"--trials must be at least 1, got {args.trials}")
        if not Path("dvc.yaml").is_file():
            raise SearchError("run search from the repository root (where dvc.yaml is)")
        check_data_reaches_trials(load_params().prepare.dir)
        return _search(config, args)
    except SearchError as error:
        print(f"search: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nsearch: interrupted; run the same command to go on (study {args.study!r} in {args.storage})", file=sys.stderr)
        return 130


def _search(config: SearchConfig, args: argparse.Namespace) -> int:
    import optuna

    wanted = args.trials or config.trials
    storage = optuna.storages.RDBStorage(
        args.storage,
        heartbeat_interval=60,  # a machine that dies mid-trial is noticed after grace_period and
        grace_period=180,       # its trial runs again (RetryFailedTrialCallback)
        failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
    )
    study = optuna.create_study(
        study_name=args.study,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=make_pruner(config.pruner),
        load_if_exists=True,
    )
    requeued = requeue_interrupted(study)
    before = finished_trials(study)
    print(f"search: study {args.study!r} in {args.storage}: {before} of {wanted} trials finished"
          + (f", {requeued} interrupted trial(s) queued again" if requeued else ""), flush=True)  # fmt: skip
    dvc_command = [sys.executable, "-m", "dvc"]
    if before < wanted:
        study.optimize(
            lambda trial: run_trial(trial, config, args.study, args.storage, args.push, dvc_command),
            n_trials=wanted - before + requeued,  # attempts here: a failed trial uses one up, so failures end
            callbacks=[optuna.study.MaxTrialsCallback(wanted, states=finished_states())],  # other machines' trials count
            catch=(SearchError,),
        )
    print(summary_table(study, config.objective))
    return 0
