"""A fresh clone with no data beside it and no network: `dvc repro` falls back to the bundled
demo data set, says so in one loud line, runs all five stages, and `predict` labels a text.
Runs whether or not SEMEVAL_DIR is set (on a slice, as the other end-to-end tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dvc_project import REPO_ROOT, SLICE, STAGES, copy_project_files, dvc, edit_params, ran_stages, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_project_files(tmp_path_factory.mktemp("fresh"))
    for group, values in SLICE.items():  # params.yaml keeps `prepare.source: auto`
        edit_params(repo, group, **values)
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "fresh clone")
    return repo


@pytest.fixture(scope="module")
def repro(repo):
    return dvc(repo, "repro")  # HF_HUB_OFFLINE=1 and no SemEval files in data/raw


def test_a_fresh_clone_runs_every_stage_on_the_demo_data(repro):
    assert ran_stages(repro.stdout) == list(STAGES)


def test_prepare_says_in_one_line_which_data_it_used_and_how_to_get_the_reference_task(repro):
    notices = [line for line in (repro.stdout + repro.stderr).splitlines() if "NOTICE" in line]
    assert len(notices) == 1
    assert "using the bundled demo data (GoEmotions test split" in notices[0]
    assert "2018-E-c-En-train.txt" in notices[0] and "dvc repro" in notices[0]


def test_the_metrics_name_the_data_set(repo, repro):
    assert json.loads((repo / "metrics.json").read_text())["dataset"] == "goemotions-demo"
    shown = dvc(repo, "metrics", "show").stdout
    assert "goemotions-demo" in shown


def test_predict_labels_a_text_with_the_demo_labels(repo, repro):
    result = run(repo, str(Path(sys.executable).parent / "predict"), "Thank you so much, this is wonderful!")
    line = json.loads(result.stdout)
    labels = (REPO_ROOT / "data/demo/goemotions/emotions.txt").read_text().split()
    assert list(line["scores"]) == labels and isinstance(line["labels"], list)
