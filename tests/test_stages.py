"""Each stage script's `main()`, run in order in a scratch folder on tiny fixtures: synthetic
texts in the official file layout and a tiny randomly initialised BERT saved as a local model
folder. Seconds, no network, no DVC: what every stage writes, and that it reads only what the
previous one wrote."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny_models import tiny_config

from mlbert.normalise import TWEETS

REPO_ROOT = Path(__file__).resolve().parents[1]


def stage_main(name: str):
    """The `main` of stages/<name>.py, imported by path as DVC runs it."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO_ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer):
    """A scratch repository root: params.yaml for the tiny run, the data and the tiny base model."""
    import torch
    from conftest import SEMEVAL_HEADER, semeval_like_lines, write_crlf
    from transformers import AutoModel

    root = tmp_path_factory.mktemp("stages")
    raw = root / "raw"
    raw.mkdir()
    for name, prefix, count in (
        ("2018-E-c-En-train.txt", "tr", 40), ("2018-E-c-En-dev.txt", "dv", 16), ("2018-E-c-En-test-gold.txt", "te", 16),
    ):  # fmt: skip
        write_crlf(raw / name, [SEMEVAL_HEADER, *semeval_like_lines(prefix, count)])
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config()).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    params = {
        "model": {"name": str(root / "base")},
        "prepare": {"source": "semeval", "dir": str(raw)},
        "tokenize": {"max_length": 32},
        "normalise": {**vars(TWEETS)},  # every part on, so the tests below see it applied
        "train": {"num_train_epochs": 3, "per_device_train_batch_size": 8, "logging_steps": 1, "bf16": False, "freeze_layers": 1,
                  "layer_lr_decay": 0.8},
        "export": {"int8_min_agreement": 0.5},  # a tiny model near its thresholds (see dvc_project.SLICE)
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def ran(workspace):
    """Every stage's summary line, after running them in pipeline order in the workspace."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        patch.setenv("HF_HUB_OFFLINE", "1")
        return {name: stage_main(name)() for name in ("prepare", "tokenize_splits", "train", "evaluate", "export")}


def test_prepare_writes_three_splits_and_the_label_list(workspace, ran):
    assert sorted(path.name for path in (workspace / "data/prepared").iterdir()) == [
        "dataset.json", "labels.json", "test.parquet", "train.parquet", "validation.parquet",
    ]  # fmt: skip
    assert len(json.loads((workspace / "data/prepared/labels.json").read_text())) == 11
    assert json.loads((workspace / "data/prepared/dataset.json").read_text())["name"] == "semeval2018-ec"
    assert ran["prepare"].startswith("semeval2018-ec: train 40, validation 16, test 16 examples, 11 labels")


def test_tokenize_writes_the_encoded_splits_and_carries_the_label_list(workspace, ran):
    from datasets import load_from_disk

    encoded = load_from_disk(str(workspace / "data/tokenized"))
    assert {name: len(split) for name, split in encoded.items()} == {"train": 40, "validation": 16, "test": 16}
    assert (workspace / "data/tokenized/labels.json").read_text() == (workspace / "data/prepared/labels.json").read_text()
    assert ran["tokenize_splits"].startswith("encoded 72 texts")


def test_train_keeps_the_average_of_the_best_epochs_and_records_its_params(workspace, ran):
    trained = workspace / "models/trained"
    assert {"config.json", "model.safetensors", "training_params.json", "tokenizer.json"} <= {p.name for p in trained.iterdir()}
    recorded = json.loads((trained / "training_params.json").read_text())
    assert recorded["model"]["head"] == "label_aware" and recorded["tokenize"]["max_length"] == 32
    assert recorded["train"]["layer_lr_decay"] == 0.8  # trained with layer-wise rates, and frozen layers
    summary = json.loads((workspace / "dvclive/metrics.json").read_text())
    assert sorted(summary["averaged_epochs"].split(", ")) == ["1", "2", "3"]
    assert not (workspace / "checkpoints").exists()  # removed once the model is saved
    assert "average of epochs" in ran["train"]


def test_train_leaves_the_frozen_embeddings_and_first_layer_as_pretrained_and_trains_the_rest(workspace, ran):
    import torch
    from safetensors.torch import load_file

    base = load_file(str(workspace / "base/model.safetensors"))
    trained = {name.removeprefix("encoder."): tensor for name, tensor in load_file(str(workspace / "models/trained/model.safetensors")).items()}

    def unchanged(part):
        names = [name for name in base if name.startswith(part)]
        assert names
        return all(torch.allclose(base[name], trained[name], rtol=1e-6, atol=0) for name in names)

    assert unchanged("embeddings.") and unchanged("encoder.layer.0.")  # train.freeze_layers: 1
    assert not unchanged("encoder.layer.1.")


def test_evaluate_writes_the_rule_with_how_it_was_fitted_the_metrics_and_the_plots(workspace, ran):
    rule = json.loads((workspace / "models/thresholds.json").read_text())
    assert rule["fitted_with"] == {"threshold": "tuned", "objective": "headline_mean", "per_label": False, "shrinkage": 5.0}
    metrics = json.loads((workspace / "metrics.json").read_text())
    assert metrics["dataset"] == "semeval2018-ec"
    assert metrics["test"]["n_examples"] == 16 and metrics["validation"]["n_examples"] == 16
    for split in ("validation", "test"):
        table = pd.read_parquet(workspace / f"predictions/{split}.parquet")
        assert len(table) == 16 and list(table.columns[:2]) == ["id", "gold"] and len(table.columns) == 2 + 11
    assert metrics["thresholds"]["default"] == rule["default"]
    assert len(list((workspace / "plots/precision_recall").glob("*.json"))) >= 1
    assert (workspace / "plots/per_label_f1.json").is_file()
    assert ran["evaluate"].startswith("test micro-F1")


def test_evaluate_writes_the_error_analysis_of_validation(workspace, ran):
    errors = workspace / "plots/errors"
    confusion = json.loads((errors / "confusion.json").read_text())
    assert len(confusion) == 12 * 12  # 11 labels and "(none)", both ways
    reliability = json.loads((errors / "reliability.json").read_text())
    assert sum(row["decisions"] for row in reliability) == 16 * 11  # every validation text x label
    sizes = json.loads((errors / "labels_per_text.json").read_text())
    assert sum(row["texts"] for row in sizes if row["source"] == "gold") == 16
    metrics = json.loads((workspace / "metrics.json").read_text())
    assert 0.0 <= metrics["validation"]["calibration_error"] <= 1.0
    worst = pd.read_csv(workspace / "predictions/validation_errors.csv")  # DVC-cached: it quotes texts
    assert len(worst) >= 1 and list(worst.columns) == ["id", "label", "error", "probability", "threshold", "gold", "predicted", "text"]
    assert worst["error"].isin(["missed", "false positive"]).all()


def test_export_writes_a_folder_whose_card_shows_the_params_of_every_stage(workspace, ran):
    folder = workspace / "models/export"
    assert {"model.onnx", "model.int8.onnx", "thresholds.json", "training_params.json", "README.md"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    params_block = yaml.safe_load(card.split("```yaml\n")[-1].split("```")[0])
    assert set(params_block) == {"model", "normalise", "tokenize", "train", "launch", "evaluate", "export"}
    assert params_block["normalise"]["hashtags"] == "segment" and "mlbert_normalise" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["mlbert_normalise"] == params_block["normalise"]  # the loaders read it from here
    assert params_block["tokenize"]["max_length"] == 32 and params_block["evaluate"]["objective"] == "headline_mean"
    parity = json.loads((workspace / "export_metrics.json").read_text())
    assert parity["onnx"]["max_abs_diff"] <= 1e-4
    assert "agreement" in ran["export"]


def test_a_stage_reads_its_input_from_the_previous_stage_not_from_the_params(workspace, ran, monkeypatch):
    # With prepare's source pointed at nothing, evaluate still works from data/prepared.
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["prepare"]["dir"] = str(workspace / "nowhere")
    monkeypatch.chdir(workspace)
    (workspace / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    try:
        assert stage_main("evaluate")().startswith("test micro-F1")
    finally:
        params["prepare"]["dir"] = str(workspace / "raw")
        (workspace / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


# Interruptions, concurrency and tampering, on the folders the run above wrote.

STAGE_ENV = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def stage_process(workspace: Path, name: str, **kwargs):
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "stages" / f"{name}.py")], cwd=workspace,
        env={**os.environ, **STAGE_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def staging_leftovers(workspace: Path) -> list[str]:
    return sorted(str(path.relative_to(workspace)) for path in workspace.rglob("*.staging"))


def test_sigterm_during_export_leaves_the_old_outputs_and_no_staging(workspace, ran):
    import signal
    import time

    before = {path: (workspace / path).read_bytes() for path in ("models/export/manifest.json", "export_metrics.json")}
    process = stage_process(workspace, "export")
    deadline = time.monotonic() + 120
    while not list((workspace / "models").glob(".export.*.staging")) and time.monotonic() < deadline:
        assert process.poll() is None, "export ended before it could be interrupted"
        time.sleep(0.02)
    time.sleep(0.5)  # well inside the work: ONNX export of the staged folder
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert staging_leftovers(workspace) == []
    assert {path: (workspace / path).read_bytes() for path in before} == before


def test_a_second_training_in_the_same_folder_fails_at_once_naming_the_first(workspace, ran):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from pathlib import Path; from mlbert.checkpoints import exclusive_training\n"
         "with exclusive_training(Path('checkpoints.lock')):\n    print('held', flush=True); time.sleep(120)")],
        cwd=workspace, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        second = stage_process(workspace, "train")
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 1
        assert f"another training (pid {holder.pid}) is running in this folder" in stderr
        assert not (workspace / "checkpoints").exists()  # it touched nothing
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def export_copy(workspace, ran, tmp_path):
    import shutil

    return Path(shutil.copytree(workspace / "models/export", tmp_path / "export"))


def test_an_untouched_export_loads_with_every_backend(export_copy):
    from mlbert import load

    for backend in ("openvino-int8", "onnx-int8", "onnx", "torch"):
        assert load(export_copy, backend=backend).predict(["so happy"])[0]["scores"]


def test_replaced_weights_make_every_backend_refuse_the_folder_naming_the_file(export_copy):
    from mlbert import load
    from mlbert.errors import ModelFolderError

    weights = bytearray((export_copy / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # another model's weights, as far as the folder can tell
    (export_copy / "model.safetensors").write_bytes(bytes(weights))
    for backend in ("openvino-int8", "onnx-int8", "torch"):
        with pytest.raises(ModelFolderError, match=r"model.safetensors is not the file this model was exported with"):
            load(export_copy, backend=backend)


def test_a_missing_thresholds_file_is_an_error_not_a_silent_half(export_copy):
    from mlbert import load
    from mlbert.errors import ModelFolderError

    (export_copy / "thresholds.json").unlink()
    with pytest.raises(ModelFolderError, match=r"thresholds.json is missing"):
        load(export_copy)


def test_a_truncated_graph_is_named_even_without_a_manifest(export_copy):
    from mlbert import load
    from mlbert.errors import ModelFolderError

    (export_copy / "manifest.json").unlink()
    graph = export_copy / "model.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(ModelFolderError, match=r"model.int8.onnx cannot be loaded"):
        load(export_copy, backend="onnx-int8")


@pytest.mark.parametrize("content", ["not json", '{"per_label": {"joy": 0.3}}', '{"default": "high"}'])
def test_a_broken_thresholds_file_is_named(export_copy, content):
    from mlbert import load
    from mlbert.errors import ModelFolderError

    (export_copy / "manifest.json").unlink()
    (export_copy / "thresholds.json").write_text(content)
    with pytest.raises(ModelFolderError, match=r"thresholds.json"):
        load(export_copy, backend="onnx")


def test_code_shipped_in_a_model_folder_never_runs_even_when_the_user_says_yes(export_copy, tmp_path):
    import subprocess
    import sys

    marker = tmp_path / "code-ran"
    config = json.loads((export_copy / "config.json").read_text())
    # A model type transformers does not know, so that only the folder's own code could load it:
    # that is when transformers asks whether to run it.
    config["model_type"] = "evil-bert"
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoTokenizer": ["tokenization_evil.Evil", None]}
    (export_copy / "config.json").write_text(json.dumps(config))
    for module in ("configuration_evil.py", "tokenization_evil.py"):
        (export_copy / module).write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    (export_copy / "manifest.json").unlink()  # whoever plants code also removes the manifest
    result = subprocess.run(
        [str(Path(sys.executable).parent / "predict"), "--model", str(export_copy), "hello"],
        input="y\ny\ny\n", capture_output=True, text=True, timeout=300, check=False, env={**__import__("os").environ, **STAGE_ENV},
    )  # fmt: skip
    assert not marker.exists()
    assert result.returncode == 1 and "trust_remote_code" in result.stderr


def test_prepare_warns_on_stderr_when_test_texts_also_occur_in_train(workspace, ran, monkeypatch, capsys):
    # the synthetic files reuse "synthetic text number N" across splits
    monkeypatch.chdir(workspace)
    stage_main("prepare")()
    err = capsys.readouterr().err
    assert "prepare: warning: 16 validation text(s) also occur in train" in err
    assert "prepare: warning: 16 test text(s) also occur in train" in err


def test_the_export_stage_fails_on_onnx_beyond_the_parity_tolerance_and_keeps_the_old_folder(workspace, ran):
    before = (workspace / "models/export/manifest.json").read_bytes()
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    strict = {**params, "export": {"parity_tolerance": 1e-12}}  # fp32 ONNX differs by ~1e-7: too much here
    (workspace / "params.yaml").write_text(yaml.safe_dump(strict), encoding="utf-8")
    try:
        process = stage_process(workspace, "export")
        _, stderr = process.communicate(timeout=300)
    finally:
        (workspace / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    assert process.returncode == 1
    assert "export: error: model.onnx differs from the PyTorch model by up to" in stderr
    assert "(export.parity_tolerance is 1e-12)" in stderr
    assert (workspace / "models/export/manifest.json").read_bytes() == before
    assert staging_leftovers(workspace) == []


def test_predict_on_raw_texts_gives_exactly_the_probabilities_evaluate_scored(workspace, ran, tmp_path, monkeypatch):
    from mlbert.cli import main as predict_main
    from mlbert.params import load_params

    monkeypatch.chdir(workspace)
    test = pd.read_parquet(workspace / "data/prepared/test.parquet")
    assert test["text"].str.contains("😡").any() and test["text"].str.contains("\\n", regex=False).any()
    raw = tmp_path / "raw.csv"
    test[["text"]].to_csv(raw, index=False)
    out = tmp_path / "predicted.jsonl"
    batch = str(load_params().evaluate.batch_size)  # the same batches: padding is per batch
    assert predict_main(["--model", "models/export", "--backend", "torch", "--file", str(raw), "--batch-size", batch, "--output", str(out)]) == 0

    scored = pd.read_parquet(workspace / "predictions/test.parquet")
    labels = json.loads((workspace / "data/prepared/labels.json").read_text())
    predicted = [json.loads(line)["scores"] for line in out.read_text().splitlines()]
    assert [[row[label] for label in labels] for row in predicted] == [
        [round(float(p), 6) for p in row] for row in scored[labels].to_numpy()
    ]


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8", "openvino-int8"])
def test_every_backend_normalises_texts_as_the_training_texts_were(workspace, ran, backend):
    from mlbert.normalise import normalise_text
    from mlbert.prediction import load

    classifier = load(workspace / "models/export", backend=backend)
    assert classifier.normalise == TWEETS  # read from the folder's config.json
    raw = ["@fan_1 so #BestDayEver 😡 \\n again &amp; again", "plain words"]
    normalised = [normalise_text(text, classifier.normalise) for text in raw]
    assert normalised[0] == "@user so Best Day Ever enraged face again & again"
    assert (classifier.predict_proba(raw) == classifier.predict_proba(normalised)).all()
