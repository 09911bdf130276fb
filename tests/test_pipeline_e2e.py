"""End to end: the real `dvc repro` in a git + DVC copy of this repository, on a small slice of
real data (the SemEval-2018 E-c files when SEMEVAL_DIR names their folder, else the bundled demo
data set), with the packaged model.

The tests share one pipeline run and go in file order: first what the run produced, then how
DVC's caching reacts to param changes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dvc_project import (
    STAGES,
    data_slice,
    dvc,
    edit_params,
    edited_params,
    environment,
    make_project,
    params_restored,
    ran_stages,
    run,
)

HEADLINE = ("f1_micro", "f1_macro", "roc_auc_micro", "roc_auc_macro", "accuracy", "jaccard")

pytestmark = pytest.mark.e2e
DATA = data_slice()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh git + DVC repository holding this project's files, after one `dvc repro`."""
    repo = make_project(tmp_path_factory.mktemp("pipeline"), DATA)
    repro = dvc(repo, "repro")
    assert ran_stages(repro.stdout) == list(STAGES), repro.stdout
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "first run")
    return repo


def test_metrics_cover_validation_and_test_with_sane_values(repo):
    metrics = json.loads((repo / "metrics.json").read_text())
    assert set(metrics) == {"dataset", "validation", "test", "thresholds"}
    assert metrics["dataset"] == DATA.name
    for split in ("validation", "test"):
        scores = metrics[split]
        assert scores["n_examples"] == 48
        for key in HEADLINE:
            assert 0.0 <= scores[key] <= 1.0, (split, key, scores[key])
        assert scores["roc_auc_micro"] > 0.5  # better than chance, even after one short epoch
        assert len(scores["per_label"]) == len(DATA.labels)
        assert set(scores["at_0_5"]) == {"f1_micro", "f1_macro", "jaccard", "accuracy"}


def test_thresholds_are_tuned_on_validation_and_exported(repo):
    metrics = json.loads((repo / "metrics.json").read_text())
    rule = metrics["thresholds"]
    assert rule["rule"] == "tuned" and rule["objective"] == "headline_mean"
    assert len(rule["per_label"]) == len(DATA.labels) and all(0.0 < t < 1.0 for t in rule["per_label"].values())
    exported = json.loads((repo / "models/export/thresholds.json").read_text())
    assert exported["per_label"] == rule["per_label"]


def test_export_writes_every_serving_file_and_records_onnx_parity(repo):
    names = {path.name for path in (repo / "models/export").iterdir()}
    assert names == {
        "config.json", "model.safetensors", "model.onnx", "model.int8.onnx", "openvino_model.xml",
        "openvino_model.bin", "tokenizer.json",
        "tokenizer_config.json", "thresholds.json", "training_params.json", "manifest.json", "README.md",
    }  # fmt: skip
    parity = json.loads((repo / "export_metrics.json").read_text())
    assert parity["n_texts"] == 48
    assert parity["onnx"]["max_abs_diff"] <= 1e-4
    assert 0.9 <= parity["onnx-int8"]["label_agreement"] <= 1.0
    assert 0.9 <= parity["openvino-int8"]["label_agreement"] <= 1.0
    card = (repo / "models/export/README.md").read_text()
    assert all(f"`{name}`" in card for name in names) and "Parity with PyTorch" in card


def test_each_backend_labels_texts_like_pytorch(repo):
    from mlbert import load

    texts = ["What a lovely, happy morning!", "I am furious about this", "so scared of tomorrow", "ok"]
    expected = load(repo / "models/export", backend="torch").predict_proba(texts)
    onnx = load(repo / "models/export", backend="onnx").predict_proba(texts)
    int8 = load(repo / "models/export", backend="onnx-int8").predict_proba(texts)
    openvino = load(repo / "models/export", backend="openvino-int8").predict_proba(texts)
    assert abs(onnx - expected).max() <= 1e-4
    assert abs(int8 - expected).max() <= 0.1
    assert abs(openvino - expected).max() <= 0.1


def test_metrics_and_plots_are_declared_for_dvc(repo):
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    workspace = shown[""]["data"]
    assert "test" in workspace["metrics.json"]["data"]
    assert "eval" in workspace["dvclive/metrics.json"]["data"]
    plots = dvc(repo, "plots", "show", "--json").stdout
    assert "dvclive/plots/metrics" in plots and "precision_recall" in plots


def test_the_default_label_aware_export_loads_with_mlbert_load(repo):
    from mlbert import load

    classifier = load(repo / "models/export", backend="torch")
    (result,) = classifier.predict(["What a lovely, happy morning!"])
    assert len(result["scores"]) == len(DATA.labels)
    assert all(0.0 <= p <= 1.0 for p in result["scores"].values())
    assert set(json.loads((repo / "models/export/thresholds.json").read_text())) >= {"default", "per_label"}
    card = (repo / "models/export/README.md").read_text()
    assert "| test |" in card and "label-aware head" in card


def test_optimum_loads_the_default_export_in_a_standard_pipeline_with_predicts_probabilities(repo, tmp_path_factory):
    """No trust_remote_code: model.onnx holds the label segment, so Optimum's standard ORT class and
    `transformers.pipeline` serve it; fed normalised texts, they answer as `predict` does on raw ones."""
    from optimum_env import optimum_python, optimum_scores

    from mlbert import load
    from mlbert.normalise import from_dict, normalise_text

    raw = ["What a lovely, happy morning! \U0001F60A", "I am furious about this &amp; more", "so scared of tomorrow", "ok"]
    classifier = load(repo / "models/export", backend="onnx")
    settings = from_dict(json.loads((repo / "models/export/config.json").read_text())["mlbert_normalise"], where="config.json")
    normalised = [normalise_text(text, settings) for text in raw]
    expected = classifier.predict_proba(raw)
    python = optimum_python(tmp_path_factory.mktemp("optimum-venv"))
    for row, scores in zip(expected, optimum_scores(python, repo / "models/export", normalised)):
        assert list(scores) != [] and set(scores) == set(classifier.labels)
        assert max(abs(scores[label] - p) for label, p in zip(classifier.labels, row)) <= 1e-4


def test_the_card_carries_every_score_as_a_machine_readable_model_index(repo):
    from huggingface_hub import ModelCard

    card = ModelCard.load(repo / "models/export/README.md")
    metrics = json.loads((repo / "metrics.json").read_text())
    results = {(r.dataset_split, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("test", "micro-F1")] == round(metrics["test"]["f1_micro"], 4)
    assert results[("validation", "Jaccard (SemEval-2018 E-c accuracy)")] == round(metrics["validation"]["jaccard"], 4)
    assert {r.task_type for r in card.data.eval_results} == {"text-classification"}
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and card.data.pipeline_tag == "text-classification"
    assert "ORTModelForSequenceClassification" in card.text


def test_the_predict_command_prints_one_json_line_per_text(repo):
    result = run(repo, str(Path(sys.executable).parent / "predict"), "I love this", "I hate waiting")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["I love this", "I hate waiting"]
    assert all(len(line["scores"]) == len(DATA.labels) and isinstance(line["labels"], list) for line in lines)


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8", "openvino-int8"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_reads_tables_with_each_backend_and_writes_csv(repo, tmp_path, backend, suffix):
    import pandas as pd

    table = pd.DataFrame({"id": [7, 8], "tweet": ["best day ever", "this is so sad"]})
    path = tmp_path / f"tweets{suffix}"
    {".csv": lambda: table.to_csv(path, index=False), ".parquet": lambda: table.to_parquet(path),
     ".jsonl": lambda: table.to_json(path, orient="records", lines=True)}[suffix]()  # fmt: skip
    result = run(
        repo, str(Path(sys.executable).parent / "predict"), "--file", str(path), "--text-column", "tweet",
        "--backend", backend, "--format", "csv",
    )  # fmt: skip
    header, *rows = result.stdout.splitlines()
    assert header.split(",")[:3] == ["text", "labels", DATA.labels[0]] and len(rows) == 2


def test_predict_names_a_missing_column(repo, tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text("tweet\nhello\n", encoding="utf-8")
    result = run(repo, str(Path(sys.executable).parent / "predict"), "--file", str(path), check=False)
    assert result.returncode == 1 and "no column 'text' (columns: tweet)" in result.stderr


def test_a_second_repro_runs_no_stage(repo):
    assert ran_stages(dvc(repo, "repro").stdout) == []


def trained_model_hash(repo: Path) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (model,) = [out for out in lock["stages"]["train"]["outs"] if out["path"] == "models/trained"]
    return model["md5"]


def test_retraining_with_the_same_params_and_seed_gives_identical_results(repo):
    metrics, model = (repo / "metrics.json").read_text(), trained_model_hash(repo)
    dvc(repo, "repro", "--force", "--single-item", "train")
    dvc(repo, "repro")
    assert trained_model_hash(repo) == model  # bit-identical weights
    assert (repo / "metrics.json").read_text() == metrics
    run(repo, "git", "checkout", "--", ".")  # only run times in dvclive/ differ


def test_a_max_length_change_reruns_tokenize_onwards_but_not_prepare(repo):
    with edited_params(repo, "tokenize", max_length=48):
        assert ran_stages(dvc(repo, "repro").stdout) == ["tokenize", "train", "evaluate", "export"]
    assert ran_stages(dvc(repo, "repro").stdout) == []  # the first run comes back from the cache


def test_a_learning_rate_change_reruns_exactly_train_evaluate_export(repo):
    with edited_params(repo, "train", learning_rate=5e-5):
        assert ran_stages(dvc(repo, "repro").stdout) == ["train", "evaluate", "export"]
        diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
        # ROC-AUC moves with any change of the weights; a thresholded score of a tiny model may not
        assert "test.roc_auc_micro" in diff["metrics.json"]
    assert ran_stages(dvc(repo, "repro").stdout) == []  # the first run comes back from the cache


def test_error_analysis_plots_of_two_revisions_come_side_by_side_in_plots_diff(repo):
    tuned = json.loads((repo / "metrics.json").read_text())["thresholds"]["default"]
    far = 0.95 if tuned < 0.5 else 0.05  # a fixed threshold far from the tuned one changes the predictions
    with edited_params(repo, "evaluate", threshold=far):
        assert ran_stages(dvc(repo, "repro").stdout) == ["evaluate", "export"]
        diff = json.loads(dvc(repo, "plots", "diff", "HEAD", "--json").stdout)["data"]
        for name in ("confusion", "cooccurrence_gold", "cooccurrence_predicted", "labels_per_text", "reliability"):
            (plot,) = diff[f"plots/errors/{name}.json"]
            spec = json.dumps(plot["content"])
            assert "<DVC_METRIC" not in spec, name  # the custom template's anchors were all filled
            assert set(plot["revisions"]) == {"HEAD", "workspace"}, name
        rows = diff["plots/errors/labels_per_text.json"][0]["content"]["data"]["values"]
        predicted = {rev: [r["texts"] for r in rows if r["rev"] == rev and r["source"] == "predicted"] for rev in ("HEAD", "workspace")}
        assert predicted["HEAD"] != predicted["workspace"]  # another threshold, other label counts per text
    assert ran_stages(dvc(repo, "repro").stdout) == []


def test_training_killed_mid_epoch_resumes_from_its_last_checkpoint(repo):
    # 3 epochs of 10 steps; the kill lands in epoch 2, after the epoch-1 checkpoint is complete
    with edited_params(repo, "train", num_train_epochs=3, seed=7):
        repro = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro"], cwd=repo, env=environment(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        first_checkpoint = repo / "checkpoints" / "checkpoint-10" / "trainer_state.json"
        deadline = time.monotonic() + 300
        while not first_checkpoint.is_file() and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert repro.poll() is None, "training ended before it could be interrupted"
        time.sleep(1.0)
        os.killpg(repro.pid, signal.SIGKILL)
        repro.wait()
        assert not (repo / "models/trained").exists()

        resumed = dvc(repo, "repro")  # no clean-up in between
        assert "train: resuming from checkpoints/checkpoint-" in resumed.stdout
        assert ran_stages(resumed.stdout) == ["train", "evaluate", "export"]
        assert not (repo / "checkpoints").exists()  # removed after success
        summary = json.loads((repo / "dvclive/metrics.json").read_text())
        # the epoch-1 checkpoint written before the kill is among the three averaged
        assert sorted(summary["averaged_epochs"].split(", ")) == ["1", "2", "3"]
        after_resume = json.loads((repo / "metrics.json").read_text())

        dvc(repo, "repro", "--force", "--single-item", "train")
        dvc(repo, "repro")
        uninterrupted = json.loads((repo / "metrics.json").read_text())
        for split in ("validation", "test"):
            for key in HEADLINE:
                assert after_resume[split][key] == pytest.approx(uninterrupted[split][key], abs=1e-3), (split, key)
    run(repo, "git", "checkout", "--", ".")
    dvc(repo, "checkout")


def test_fixing_a_bad_param_restores_the_last_good_results_from_the_cache(repo):
    good = (repo / "metrics.json").read_text()
    with edited_params(repo, "train", per_device_train_batch_size=0):
        failed = dvc(repo, "repro", check=False)
        assert failed.returncode != 0
        assert "train.per_device_train_batch_size must be >= 1" in failed.stderr
    assert ran_stages(dvc(repo, "repro").stdout) == []
    assert (repo / "metrics.json").read_text() == good
    assert (repo / "models/export/model.safetensors").is_file()


def test_two_processes_train_one_model_with_one_set_of_logs(repo):
    with edited_params(repo, "launch", num_processes=2):
        result = dvc(repo, "repro")
        assert ran_stages(result.stdout) == ["train", "evaluate", "export"]
        assert "torch.distributed.run --standalone --nproc-per-node=2" in result.stdout
        assert result.stdout.count("train: best epoch") == 1  # only the main process reports
        summary = json.loads((repo / "dvclive/metrics.json").read_text())
        assert (summary["num_processes"], summary["effective_batch_size"]) == (2, 32)
        assert summary["eval"]["loss"] < 0.8  # a per-example BCE, not multiplied by the process count
        f1_rows = (repo / "dvclive/plots/metrics/eval/f1_micro.tsv").read_text().splitlines()
        assert len(f1_rows) == 2  # a header and one evaluation: nothing logged twice
        # no per-process leftovers (staging folders, second copies) beside the stage outputs
        assert sorted(path.name for path in (repo / "models").iterdir()) == [".gitignore", "export", "thresholds.json", "trained"]
        assert json.loads((repo / "metrics.json").read_text())["test"]["roc_auc_micro"] > 0.5
    run(repo, "git", "checkout", "--", ".")
    assert ran_stages(dvc(repo, "repro").stdout) == []


def test_an_experiment_with_a_set_param_shows_up_in_exp_show(repo):
    with params_restored(repo):  # `exp run -S` writes the set param into params.yaml
        dvc(repo, "exp", "run", "-n", "lr-3e-5", "-S", "train.learning_rate=3e-5")
        table = json.loads(dvc(repo, "exp", "show", "--json").stdout)
        experiments = [exp for commit in table for exp in (commit.get("experiments") or [])]
        names = [exp["name"] for exp in experiments]
        assert "lr-3e-5" in names
    run(repo, "git", "checkout", "--", ".")


def test_compare_runs_gives_each_metric_a_paired_interval_between_a_commit_and_an_experiment(repo):
    # the per-text predictions of both come from DVC's cache, not from the workspace
    result = run(
        repo, str(Path(sys.executable).parent / "compare-runs"), "HEAD", "lr-3e-5", "--samples", "200", "--json"
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["texts"] == 48 and set(report["metrics"]) == {"jaccard", "f1_micro", "f1_macro", "headline_mean"}
    for row in report["metrics"].values():
        assert row["difference"] == pytest.approx(row["b"] - row["a"]) and row["low"] <= row["high"]
    assert not (repo / "predictions").exists() or "predictions" in (repo / ".gitignore").read_text()


def test_a_seed_experiment_and_its_baseline_are_summarised_as_one_group(repo):
    with params_restored(repo):
        dvc(repo, "exp", "run", "-n", "seed-43", "-S", "train.seed=43")
    run(repo, "git", "checkout", "--", ".")
    result = run(repo, str(Path(sys.executable).parent / "summarise-seeds"), "HEAD", "seed-43", "--json")
    (group,) = json.loads(result.stdout)
    assert group["varying"] == {} and group["revs"] == ["HEAD", "seed-43"]
    jaccard = group["scores"]["test.jaccard"]
    assert jaccard["min"] <= jaccard["mean"] <= jaccard["max"] and jaccard["std"] >= 0.0
    dvc(repo, "checkout")


def test_the_seed_sweep_benchmark_runs_named_experiments_and_puts_the_workspace_back(repo, tmp_path):
    report = tmp_path / "sweep.json"
    command = ("benchmarks/seed_sweep.py", "--name", "sweep", "--seeds", "43", "44", "--until", "evaluate", "--json", str(report))
    result = run(repo, sys.executable, *command)
    assert "Running stage 'evaluate'" in result.stdout and "Running stage 'export'" not in result.stdout
    summary = json.loads(report.read_text())
    assert list(summary["runs"]) == ["sweep-s43", "sweep-s44"]
    for facts in summary["runs"].values():
        assert facts["wall_s"] > 0 and isinstance(facts["bf16"], bool) and facts["machine"]["cpu"]
    assert "| (all the same but the seed) | 43, 44 |" in result.stdout
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # params.yaml and dvc.lock as committed
    assert ran_stages(dvc(repo, "repro").stdout) == []  # and the outputs checked out to match them


def test_the_plain_cls_head_with_pos_weight_exports_a_transformers_pipeline_folder(repo):
    from transformers import pipeline

    with params_restored(repo):
        edit_params(repo, "model", head="cls")
        edit_params(repo, "train", pos_weight=True, label_correlation_weight=0.0)
        result = dvc(repo, "repro")
        assert ran_stages(result.stdout) == ["train", "evaluate", "export"]  # the head does not change tokens
        assert f"train: pos_weight {DATA.labels[0]}" in result.stdout
        parity = json.loads((repo / "export_metrics.json").read_text())
        assert parity["onnx"]["max_abs_diff"] <= 1e-4
        predicted = run(repo, str(Path(sys.executable).parent / "predict"), "so happy!", "--backend", "onnx")
        assert len(json.loads(predicted.stdout)["scores"]) == len(DATA.labels)
        classify = pipeline("text-classification", model=str(repo / "models/export"), top_k=None)
        (scores,) = classify(["What a lovely, happy morning!"])
        assert len(scores) == len(DATA.labels) and all(0.0 <= item["score"] <= 1.0 for item in scores)


def test_a_bad_param_fails_fast_naming_the_key(repo):
    with edited_params(repo, "train", learning_rate=-1.0):
        result = dvc(repo, "repro", check=False)
    assert result.returncode != 0
    assert "train.learning_rate must be > 0" in result.stderr + result.stdout
