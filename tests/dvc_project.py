"""Helpers for the end-to-end tests: a git + DVC copy of this project on a slice of real data:
the SemEval-2018 E-c files when SEMEVAL_DIR names their folder, else the bundled demo data set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlbert.data import SEMEVAL_LABELS

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "tokenize", "train", "evaluate", "export")
SLICE = {
    "prepare": {"max_train_samples": 160, "max_eval_samples": 48},
    "tokenize": {"max_length": 64},
    # fp32 pinned: `bf16: auto` picks the faster precision by timing, and on a loaded machine two
    # runs can time differently and pick differently, which the determinism tests must not see.
    "train": {"num_train_epochs": 1, "per_device_train_batch_size": 16, "logging_steps": 2, "bf16": False},
    # A one-epoch model on 160 texts sits near its thresholds, where int8 rounding flips more
    # decisions than on a trained one (96.8% agreement seen); the gate itself is tested on its own.
    "export": {"int8_min_agreement": 0.5},
}
# Results of the committed full run; a test project makes its own.
RESULT_FILES = ("dvc.lock", "metrics.json")
RESULT_DIRS = ("dvclive/", "plots/")


@dataclass(frozen=True)
class DataSlice:
    """The data an end-to-end project runs on: prepare params, the data set's name, its labels."""

    prepare: dict
    name: str
    labels: tuple[str, ...]


def data_slice() -> DataSlice:
    value = os.environ.get("SEMEVAL_DIR")
    if not value:
        labels = (REPO_ROOT / "data/demo/goemotions/emotions.txt").read_text(encoding="utf-8").split()
        return DataSlice({"source": "demo"}, "goemotions-demo", tuple(labels))
    folder = Path(value).resolve()
    assert (folder / "2018-E-c-En-train.txt").is_file(), f"SEMEVAL_DIR={folder} lacks the E-c files"
    return DataSlice({"source": "semeval", "dir": str(folder)}, "semeval2018-ec", SEMEVAL_LABELS)


def semeval_dir_or_skip() -> Path:
    """The SemEval files' folder, for the checks that only the reference task can make."""
    value = os.environ.get("SEMEVAL_DIR")
    if not value:
        pytest.skip("set SEMEVAL_DIR to the folder with the SemEval-2018 E-c files for SemEval-specific checks")
    return Path(value).resolve()


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }  # fmt: skip


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=repo, env=environment(), capture_output=True, text=True, timeout=900, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *args, check=check)


def ran_stages(output: str) -> list[str]:
    return [stage for stage in STAGES if f"Running stage '{stage}'" in output]


def edit_params(repo: Path, group: str, **values) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[group].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@contextmanager
def params_restored(repo: Path) -> Iterator[None]:
    """On leaving the block, params.yaml is back at its committed state, even when the block
    failed: the tests share one repository, and an edit left behind would change the next test."""
    try:
        yield
    finally:
        run(repo, "git", "checkout", "params.yaml")


@contextmanager
def edited_params(repo: Path, group: str, **values) -> Iterator[None]:
    """`values` set in the `group` of params.yaml for the duration of the block only."""
    with params_restored(repo):
        edit_params(repo, group, **values)
        yield


def make_project(folder: Path, data: DataSlice) -> Path:
    """Copy this project's files (not its results) into `folder`, set the slice, commit it."""
    copy_project_files(folder)
    edit_params(folder, "prepare", **data.prepare, **SLICE["prepare"])
    edit_params(folder, "tokenize", **SLICE["tokenize"])
    edit_params(folder, "train", **SLICE["train"])
    edit_params(folder, "export", **SLICE["export"])
    run(folder, "git", "init", "-q", "-b", "main")
    run(folder, "git", "add", "-A")
    run(folder, "git", "commit", "-qm", "slice of the pipeline")
    return folder


def copy_project_files(folder: Path) -> Path:
    """Copy what a fresh clone of this project holds (tracked and new files, not its results and
    not ignored data) into `folder`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if name in RESULT_FILES or name.startswith(RESULT_DIRS) or not source.is_file():
            continue
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, folder / name)
    return folder
