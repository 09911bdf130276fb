"""dvc.yaml tells DVC the truth: each stage depends on every package module it runs and on
exactly the params it reads, so a change reruns the stages it affects and no others."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from dvc_deps import package_files_run_by

from mlbert.params import DEFAULT_TRAINING_ARGS, Params, load_params, params_from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
PARAMS_YAML = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
ALL = ["prepare", "tokenize", "train", "evaluate", "export"]

# For each param: the stages a change to it reruns (the stages that read it, and everything
# downstream of them).
RERUNS = {
    "prepare.dir": ALL,
    "prepare.seed": ALL,
    "prepare.max_train_samples": ALL,
    "model.name": ["tokenize", "train", "evaluate", "export"],
    "model.trust_remote_code": ["tokenize", "train", "evaluate", "export"],
    "tokenize.max_length": ["tokenize", "train", "evaluate", "export"],
    # the trained model records its normalisation, so train onwards follow through data/tokenized
    "normalise.hashtags": ["tokenize", "train", "evaluate", "export"],
    "normalise.emoji": ["tokenize", "train", "evaluate", "export"],
    "model.head": ["train", "evaluate", "export"],
    "model.allow_pickle_weights": ["train", "evaluate", "export"],
    "train.learning_rate": ["train", "evaluate", "export"],
    "train.seed": ["train", "evaluate", "export"],
    "train.label_correlation_weight": ["train", "evaluate", "export"],
    "train.loss": ["train", "evaluate", "export"],
    "train.asymmetric_gamma_negative": ["train", "evaluate", "export"],
    "train.gradient_accumulation_steps": ["train", "evaluate", "export"],  # a field params.yaml does not list
    "launch.num_processes": ["train", "evaluate", "export"],
    "evaluate.objective": ["evaluate", "export"],
    "evaluate.shrinkage": ["evaluate", "export"],
    "export.int8": ["export"],
    "export.parity_tolerance": ["export"],
    "export.openvino_int8": ["export"],
    "export.int8_min_agreement": ["export"],
}


def script_of(stage: dict) -> Path:
    match = re.fullmatch(r"python (stages/\w+\.py)", stage["cmd"])
    assert match, f"unexpected command {stage['cmd']!r}"
    return REPO_ROOT / match.group(1)


def declares(stage: dict, key: str) -> bool:
    """Whether `stage` declares the param `key`, by itself or by its whole group."""
    return any(key == entry or key.startswith(f"{entry}.") for entry in stage.get("params", []))


def downstream(stages: list[str]) -> list[str]:
    """`stages` and every stage that depends, directly or not, on one of their outputs."""
    outputs = {name: {out if isinstance(out, str) else next(iter(out)) for out in DVC_YAML[name].get("outs", [])} |
               {next(iter(m)) for m in DVC_YAML[name].get("metrics", [])} for name in DVC_YAML}  # fmt: skip
    found = set(stages)
    changed = True
    while changed:
        changed = False
        for name, stage in DVC_YAML.items():
            if name not in found and any(dep in outputs[up] for up in found for dep in stage["deps"]):
                found.add(name)
                changed = True
    return [name for name in ALL if name in found]


@pytest.mark.parametrize("name", ALL)
def test_each_stage_depends_on_exactly_the_package_modules_it_imports(name):
    stage = DVC_YAML[name]
    script = script_of(stage)
    needed = {str(path.relative_to(REPO_ROOT)) for path in package_files_run_by(script, REPO_ROOT / "src")}
    declared = {dep for dep in stage["deps"] if dep.startswith("src/")}
    assert str(script.relative_to(REPO_ROOT)) in stage["deps"]
    assert needed - declared == set(), f"{name} runs these but does not depend on them"
    assert declared - needed == set(), f"{name} depends on these but never imports them"


@pytest.mark.parametrize("key", sorted(RERUNS))
def test_a_param_change_reruns_the_stages_that_read_it_and_those_downstream(key):
    readers = [name for name in ALL if declares(DVC_YAML[name], key)]
    assert downstream(readers) == RERUNS[key]


def flat_keys(mapping: dict, prefix: str = "") -> set[str]:
    return {f"{prefix}{key}" for key in mapping}


def test_every_param_in_params_yaml_is_read_by_some_stage():
    for group, values in PARAMS_YAML.items():
        for key in flat_keys(values, f"{group}."):
            assert any(declares(stage, key) for stage in DVC_YAML.values()), f"no stage declares {key}"


def test_every_declared_param_exists_in_params_yaml():
    for name, stage in DVC_YAML.items():
        for entry in stage.get("params", []):
            group, _, key = entry.partition(".")
            assert group in PARAMS_YAML and (not key or key in PARAMS_YAML[group]), f"{name} declares {entry}"


def test_an_empty_params_file_means_exactly_what_params_yaml_says():
    assert params_from_dict({}) == load_params(REPO_ROOT / "params.yaml")


def test_params_yaml_writes_out_every_param_and_default_training_argument():
    for field in dataclasses.fields(Params):
        group_class = field.type if isinstance(field.type, type) else type(getattr(Params(), field.name))
        names = {f.name for f in dataclasses.fields(group_class) if f.name != "training_args"}
        if field.name == "train":
            names |= set(DEFAULT_TRAINING_ARGS)
        assert set(PARAMS_YAML[field.name]) == names, field.name
