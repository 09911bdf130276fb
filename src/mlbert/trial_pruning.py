"""The train stage's side of a guided search (`search`): report each epoch's validation score to
the trial's Optuna study and stop a trial that is clearly worse than the ones before it.

`search` runs each trial as a DVC experiment and names the trial in the MLBERT_SEARCH_TRIAL
environment variable (a JSON object: storage URL, study name, trial number, the per-epoch metric
and the pruner's settings). Without that variable training runs as always. A pruned trial fails
the train stage (a one-line error, exit 1), so DVC never caches a cut-short model under the
params of the full run; whether a trial was pruned changes whether the stage succeeds, never what
a successful stage writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .errors import MlbertError

TRIAL_ENV = "MLBERT_SEARCH_TRIAL"
PRUNED_ATTR = "pruned_after_epoch"


class TrialPruned(MlbertError):
    """This search trial's validation scores fell below what the pruner accepts at this epoch."""


def make_pruner(settings: Mapping[str, Any]) -> Any:
    """The study's pruner (Optuna's median rule): after `startup_trials` finished trials, a trial
    whose validation score at an epoch after its first `warmup_epochs` is below the median of the
    earlier trials' scores at that epoch stops. The search and each trial build it alike."""
    import optuna

    # Steps are epochs counted from 1; Optuna prunes from step n_warmup_steps on.
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(settings["startup_trials"]), n_warmup_steps=int(settings["warmup_epochs"]) + 1
    )


def trial_from_environment() -> dict[str, Any] | None:
    """The trial this training belongs to, or None outside a search."""
    value = os.environ.get(TRIAL_ENV)
    if not value:
        return None
    try:
        trial = json.loads(value)
        missing = {"storage", "study", "number", "metric", "pruner"} - set(trial)
    except (ValueError, TypeError) as error:
        raise MlbertError(f"{TRIAL_ENV} is not the JSON object `search` writes: {error}") from error
    if missing:
        raise MlbertError(f"{TRIAL_ENV} lacks {', '.join(sorted(missing))} (it is set by `search`, not by hand)")
    return trial


def pruning_callbacks() -> list[Any]:
    """[a Trainer callback that reports to the trial and prunes], or [] outside a search."""
    trial = trial_from_environment()
    if trial is None:
        return []
    import optuna
    from transformers import TrainerCallback

    study = optuna.load_study(study_name=trial["study"], storage=trial["storage"], pruner=make_pruner(trial["pruner"]))
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(trial["number"]))
    handle = optuna.Trial(study, trial_id)
    key = f"eval_{trial['metric']}"

    class ReportAndPrune(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
            if not metrics or key not in metrics:
                return
            epoch = round(state.epoch or 0)
            handle.report(float(metrics[key]), step=epoch)
            if handle.should_prune():
                handle.set_user_attr(PRUNED_ATTR, epoch)
                raise TrialPruned(
                    f"search trial {trial['number']} of {trial['study']} pruned after epoch {epoch}: "
                    f"validation {trial['metric']} {metrics[key]:.4f} is below the median of the earlier trials"
                )

    return [ReportAndPrune()]
