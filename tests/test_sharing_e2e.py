"""Experiments travel between machines through a git remote and a DVC remote (both local here)."""

from __future__ import annotations

import json

import pytest
from dvc_project import data_slice, dvc, make_project, ran_stages, run

pytestmark = pytest.mark.e2e


def experiment_names(repo) -> dict[str, dict]:
    table = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    return {exp["name"]: exp for commit in table for exp in (commit.get("experiments") or [])}


def test_the_repository_has_a_default_dvc_remote_outside_the_repo():
    from dvc_project import REPO_ROOT

    config = (REPO_ROOT / ".dvc" / "config").read_text()
    assert "remote = local" in config
    assert "url = ../../mlbert-dvc-storage" in config  # relative to .dvc/: beside the repository


def test_an_experiment_pushed_from_one_clone_is_pulled_listed_and_restored_in_another(tmp_path):
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    (tmp_path / "a").mkdir()
    a = make_project(tmp_path / "a", data_slice())
    dvc(a, "remote", "modify", "local", "url", str(storage))
    run(a, "git", "commit", "-qam", "shared DVC storage")
    run(a, "git", "remote", "add", "origin", str(origin))
    run(a, "git", "push", "-q", "origin", "main")
    dvc(a, "exp", "run", "-n", "shared-lr", "-S", "train.learning_rate=5e-5")
    dvc(a, "exp", "push", "origin", "shared-lr")

    b = tmp_path / "b"
    run(tmp_path, "git", "clone", "-q", str(origin), str(b))
    dvc(b, "exp", "pull", "origin", "shared-lr")
    experiments = experiment_names(b)
    assert "shared-lr" in experiments
    assert "f1_micro" in json.dumps(experiments["shared-lr"])  # its metrics came along

    dvc(b, "exp", "apply", "shared-lr")
    dvc(b, "checkout")
    assert (b / "models/trained/model.safetensors").is_file()
    assert (b / "models/export/model.safetensors").is_file()
    assert ran_stages(dvc(b, "repro").stdout) == []  # restored, not retrained


def test_the_registered_model_artifact_is_fetched_by_version_and_stage_from_a_bare_clone(tmp_path):
    """`dvc.yaml` declares models/export as an artifact; GTO versions it and assigns a stage with git
    tags; from anywhere with only the git remote and the DVC remote, `dvc artifacts get` returns
    the folder, and `predict` loads it."""
    import sys
    from pathlib import Path

    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    (tmp_path / "a").mkdir()
    a = make_project(tmp_path / "a", data_slice())
    dvc(a, "remote", "modify", "local", "url", str(storage))
    dvc(a, "repro")
    run(a, "git", "add", "-A")
    run(a, "git", "commit", "-qm", "trained on the slice")
    dvc(a, "push")
    gto = str(Path(sys.executable).parent / "gto")
    run(a, gto, "register", "mlbert-classifier", "--version", "v1.0.0")
    run(a, gto, "assign", "mlbert-classifier", "--version", "v1.0.0", "--stage", "prod")
    shown = json.loads(run(a, gto, "show", "--json").stdout)
    assert shown["mlbert-classifier"]["version"] == "v1.0.0" and "prod" in json.dumps(shown)
    run(a, "git", "remote", "add", "origin", str(origin))
    run(a, "git", "push", "-q", "origin", "main", "--tags")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dvc(elsewhere, "artifacts", "get", str(origin), "mlbert-classifier", "--stage", "prod", "-o", "prod-model")
    dvc(elsewhere, "artifacts", "get", str(origin), "mlbert-classifier", "--rev", "v1.0.0", "-o", "v1-model")
    for folder in ("prod-model", "v1-model"):
        assert (elsewhere / folder / "model.onnx").is_file() and (elsewhere / folder / "manifest.json").is_file()
    predicted = run(elsewhere, str(Path(sys.executable).parent / "predict"), "--model", "prod-model", "I love this")
    assert json.loads(predicted.stdout)["text"] == "I love this"
