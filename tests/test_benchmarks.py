"""Every script in benchmarks/, run end to end on a tiny random BERT and a few invented texts
(seconds, no network, no real data): each prints the table it promises, with numbers in range.

pipeline.py runs `dvc repro` stage by stage; here the stages are replaced by a recorder and its
report is read from the metrics.json the evaluate stage writes for the tiny model.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_models import tiny_config

from mlbert.data import SEMEVAL_FILES, Splits, read_splits, write_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import format_score, multilabel_metrics
from mlbert.params import HEADLINE_METRICS
from mlbert.paths import THRESHOLDS_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = ["calm", "delight", "gloom"]
WORDS = ["sunny", "rainy", "quiet", "loud", "bright", "grey", "happy", "tired", "warm", "cold"]
SERVING_BACKENDS = [
    "PyTorch fp32", "PyTorch bf16 autocast", "ONNX fp32", "ONNX int8", "OpenVINO int8", "OpenVINO int8, one stream"
]


def timed_backends(output: str) -> list[str]:
    """The serving table's rows: every backend, but PyTorch bf16 where the benchmark said it is
    emulated on this CPU (it times one batch each way first)."""
    if "PyTorch bf16 autocast: not timed, " in output:
        return [name for name in SERVING_BACKENDS if name != "PyTorch bf16 autocast"]
    return SERVING_BACKENDS


def run_path(path: str):
    """The script at `path` (from the repository root) as a module, imported as `python <path>` runs it."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(name: str):
    return run_path(f"benchmarks/{name}.py")


def table(output: str, header: str) -> list[list[str]]:
    """The body of the markdown table whose header line starts with `header`, as rows of cells."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def invented_split(prefix: str, count: int) -> pd.DataFrame:
    """`count` made-up texts of varied length, with labels that give every label positives and negatives."""
    texts = [f"{prefix} note {i}: " + " ".join(WORDS[(i + k) % 10] for k in range(1 + 3 * (i % 5))) for i in range(count)]
    labels = [[name for j, name in enumerate(LABELS) if (i + j) % 3 == 0 or (i * j) % 4 == 1] for i in range(count)]
    return pd.DataFrame({"id": [f"{prefix}-{i:03d}" for i in range(count)], "text": texts, "labels": labels})


def tiny_classifier(seed: int):
    """A two-layer BERT with a plain multi-label head over LABELS; wide initial weights, so that
    its probabilities differ from text to text and from seed to seed."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = tiny_config(
        initializer_range=0.5, problem_type="multi_label_classification",
        id2label=dict(enumerate(LABELS)), label2id={name: i for i, name in enumerate(LABELS)},
    )  # fmt: skip
    return BertForSequenceClassification(config).eval()


def write_model_folder(folder: Path, tokenizer, seed: int) -> Path:
    """A model folder as train writes it (safetensors, config, tokenizer) plus a thresholds.json."""
    folder.mkdir(parents=True)
    tiny_classifier(seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / THRESHOLDS_NAME).write_text(json.dumps({"default": 0.5, "objective": None, "per_label": {"delight": 0.45}}))
    return folder


def probabilities_of(folder: Path, texts: list[str]) -> np.ndarray:
    from mlbert.prediction import load

    return load(folder, backend="torch").predict_proba(texts)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """data/prepared as the prepare stage writes it, with invented texts."""
    folder = tmp_path_factory.mktemp("prepared")
    splits = Splits(
        train=invented_split("train", 6), validation=invented_split("val", 16), test=invented_split("test", 12), labels=LABELS
    )
    write_splits(splits, folder)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer) -> Path:
    """An exported folder: the model folder plus model.onnx, model.int8.onnx and the OpenVINO int8
    model, as export writes them."""
    from mlbert.export import write_onnx_files, write_openvino_file

    folder = write_model_folder(tmp_path_factory.mktemp("export") / "model", tokenizer, seed=0)
    write_onnx_files(folder, quantize=True, fp32_ffn_outputs=1)
    write_openvino_file(folder, ["a calibration text", "and a second, longer calibration text"])
    return folder


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory, tokenizer) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("seed1") / "model", tokenizer, seed=1)


def numbers(cells: list[str]) -> list[float]:
    return [float(cell.rstrip("x%")) for cell in cells]


# serving.py


def test_serving_prints_one_row_per_backend_against_pytorch_fp32(exported, prepared, capsys):
    assert script("serving").main(
        ["--model", str(exported), "--data", str(prepared), "--repeats", "1", "--latency-texts", "2", "--batch-size", "4"]
    ) == 0  # fmt: skip
    output = capsys.readouterr().out
    assert output.startswith("12 test texts, batch 4 (median of 1 passes), 2 single-text requests")
    rows = {row[0]: row[1:] for row in table(output, "| backend | texts/s (batch 4) |")}
    assert list(rows) == timed_backends(output)
    for name, cells in rows.items():
        per_second, speed_up, p50, p95, diff, agreement, micro_f1, jaccard = numbers(cells)
        assert per_second > 0 and speed_up > 0 and 0 < p50 <= p95, name
        assert 0 <= diff <= 1 and 0 <= agreement <= 100 and 0 <= micro_f1 <= 1 and 0 <= jaccard <= 1, name
    reference = rows["PyTorch fp32"]
    assert reference[1] == "1.00x" and reference[4:6] == ["0.0e+00", "100.00%"]
    assert float(rows["ONNX fp32"][4]) <= 1e-4
    test = read_splits(prepared).test
    expected = multilabel_metrics(
        labels_to_multi_hot(test["labels"], LABELS), probabilities_of(exported, test["text"].tolist()), [0.5, 0.45, 0.5], LABELS
    )
    assert reference[6:] == [format_score(expected["f1_micro"]), format_score(expected["jaccard"])]


# batch_dependence.py


def test_batch_dependence_moves_only_dynamic_int8_beyond_float_rounding(exported, prepared, capsys):
    assert script("batch_dependence").main(["--model", str(exported), "--data", str(prepared)]) == 0
    rows = table(capsys.readouterr().out, "| backend | against |")
    assert [row[:2] for row in rows] == [
        [backend, against] for backend in ("openvino-int8", "onnx-int8", "onnx", "torch") for against in ("reverse order", "one at a time")
    ]
    for backend, _, max_diff, decisions, texts in rows:
        assert texts.endswith("of 12") and 0 <= float(decisions.rstrip("%")) <= 100
        if backend in ("onnx", "torch"):
            assert float(max_diff) < 1e-4 and decisions == "0.00%" and texts == "0.00% of 12"


def test_serving_openvino_adds_openvino_on_model_onnx_against_pytorch(exported, prepared, capsys):
    assert script("serving").main(
        ["--model", str(exported), "--data", str(prepared), "--repeats", "1", "--latency-texts", "2", "--openvino"]
    ) == 0  # fmt: skip
    output = capsys.readouterr().out
    rows = {row[0]: row[1:] for row in table(output, "| backend | texts/s")}
    on_onnx = ["OpenVINO fp32, model.onnx", "OpenVINO bf16, model.onnx", "OpenVINO int8, model.onnx"]
    assert list(rows) == [*timed_backends(output), *on_onnx]
    assert float(rows["OpenVINO fp32, model.onnx"][4]) <= 1e-4  # fp32 OpenVINO answers as PyTorch does
    for name in on_onnx[1:]:
        per_second, _, _, _, diff, agreement, *_ = numbers(rows[name])
        assert per_second > 0 and 0 <= diff <= 1 and 0 <= agreement <= 100


@pytest.fixture(scope="module")
def label_aware_exported(tmp_path_factory, tokenizer) -> Path:
    """An exported folder with the label-aware head (model.onnx and model.int8.onnx, no OpenVINO)."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel

    from mlbert.export import write_onnx_files
    from mlbert.label_aware import build_label_aware, save_label_aware_config

    torch.manual_seed(0)
    model = build_label_aware(AutoModel.from_config(tiny_config(initializer_range=0.5)), tokenizer, LABELS).eval()
    folder = tmp_path_factory.mktemp("label-aware") / "model"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    save_label_aware_config(model, folder)
    tokenizer.save_pretrained(folder)
    (folder / THRESHOLDS_NAME).write_text(json.dumps({"default": 0.5, "objective": None, "per_label": {}}))
    write_onnx_files(folder, quantize=True, fp32_ffn_outputs=1)
    return folder


@pytest.mark.parametrize("head", ["cls", "label_aware"])
def test_serving_ctranslate2_adds_the_encoder_on_ctranslate2_with_the_heads_own_scores(head, exported, label_aware_exported, prepared, capsys):
    folder = exported if head == "cls" else label_aware_exported
    assert script("serving").main(
        ["--model", str(folder), "--data", str(prepared), "--repeats", "1", "--latency-texts", "2", "--ctranslate2"]
    ) == 0  # fmt: skip
    rows = {row[0]: row[1:] for row in table(capsys.readouterr().out, "| backend | texts/s")}
    assert list(rows)[-2:] == ["CTranslate2 int8", "CTranslate2 fp32"]
    # fp32 answers as PyTorch does: the head rebuilt around the CTranslate2 encoder is the same head.
    assert float(rows["CTranslate2 fp32"][4]) <= 1e-4 and rows["CTranslate2 fp32"][5] == "100.00%"
    per_second, _, p50, p95, diff, agreement, *_ = numbers(rows["CTranslate2 int8"])
    assert per_second > 0 and 0 < p50 <= p95 and 0 <= diff <= 1 and 0 <= agreement <= 100


def test_serving_load_test_runs_a_real_server_and_reports_its_share_of_offline_throughput(exported, prepared, capsys):
    assert script("serving").main(
        ["--model", str(exported), "--data", str(prepared), "--repeats", "1", "--latency-texts", "2", "--load", "--clients", "3"]
    ) == 0  # fmt: skip
    output = capsys.readouterr().out
    assert "Under load: 3 concurrent clients, one text per request, 12 requests, max wait 5 ms" in output
    defaults, one_worker = table(output, "| server | backend | texts/s | of offline")
    # `serve` chose its backend by timing, and the benchmark names what it chose: its own defaults
    # first, then one batch of up to 32 at a time (the protocol of the earlier tables). Each setting
    # times the backends as it runs them, so on a tiny model the two may choose differently.
    assert [defaults[0], one_worker[0]] == ["`serve --backend auto`", "`serve --backend auto --workers 1 --max-batch-size 32`"]
    assert {defaults[1], one_worker[1]} <= {"openvino-int8", "onnx-int8", "onnx", "torch"}
    for row in (defaults, one_worker):
        per_second, share, p50, p95, p99, per_pass = numbers(row[2:])
        assert per_second > 0 and share > 0 and 0 < p50 <= p95 <= p99 and 1 <= per_pass <= 3


def test_serving_batching_values_become_serve_flags_and_bad_ones_are_refused():
    serving = script("serving")
    assert serving.batching_flags("default") == ""
    assert serving.batching_flags("4x8") == "--workers 4 --max-batch-size 8"
    for bad in ("4", "0x4", "4x", "fourx4"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected default or WORKERSxBATCH"):
            serving.batching_flags(bad)
    # LitServe gets the same batching, serve's defaults spelt out, and its worker processes share the cores.
    from mlbert.devices import available_cores

    share = max(1, available_cores() // 4)
    assert serving.litserve_flags("default") == f"--workers 4 --max-batch-size 4 --threads {share}"
    assert serving.litserve_flags("1x32") == "--workers 1 --max-batch-size 32"


def test_serving_litserve_runs_the_same_load_test_on_litserve_with_the_backend_serve_ran(exported, prepared, capsys):
    assert script("serving").main(
        ["--model", str(exported), "--data", str(prepared), "--repeats", "1", "--latency-texts", "2", "--load", "--litserve",
         "--clients", "3", "--serve-backend", "onnx", "--serve-batching", "1x32"]
    ) == 0  # fmt: skip
    rows = table(capsys.readouterr().out, "| server | backend | texts/s | of offline")
    expected = [["`serve --backend onnx --workers 1 --max-batch-size 32`", "onnx"], ["LitServe `--workers 1 --max-batch-size 32`", "onnx"]]
    assert [row[:2] for row in rows] == expected
    per_second, share, p50, p95, p99, per_pass = numbers(rows[1][2:])
    assert per_second > 0 and share > 0 and 0 < p50 <= p95 <= p99 and 1 <= per_pass <= 3


def test_litserve_app_answers_as_serve_does(exported):
    from mlbert.prediction import load

    serving = script("serving")
    port = serving.free_port()
    app = [sys.executable, str(REPO_ROOT / "benchmarks/litserve_app.py"), "--model", str(exported), "--backend", "torch", "--port", str(port)]
    server = serving.ServerProcess(app, port)
    texts = ["sunny and warm", "grey, cold and rainy all week"]
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", "/predict", body=json.dumps({"texts": texts}), headers={"content-type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    finally:
        server.stop()
    assert response.status == 200
    expected = [{"text": text, **result} for text, result in zip(texts, load(exported, backend="torch").predict(texts))]
    assert answer == {"predictions": expected}
    with pytest.raises(ProcessLookupError):  # stopped, its worker processes too: the group is empty
        os.killpg(server.process.pid, 0)


def test_serving_refuses_litserve_without_a_load_test(exported, prepared, capsys):
    with pytest.raises(SystemExit):
        script("serving").main(["--model", str(exported), "--data", str(prepared), "--litserve"])
    assert "--litserve is a load test: add --load" in capsys.readouterr().err


def test_streaming_reports_memory_and_speed_for_each_file_size(exported, capsys, tmp_path):
    flags = ["--device", "cpu", "--batch-size", "16"]  # passed on to predict
    assert script("streaming").main(["--model", str(exported), "--lines", "50", "300", "--scratch", str(tmp_path), *flags]) == 0
    output = capsys.readouterr().out
    assert "--device=cpu --batch-size=16; load and one text" in output
    rows = table(output, "| lines | input MB |")
    assert [row[0] for row in rows] == ["50", "300"]
    for row in rows:
        megabytes, seconds, per_second, peak = numbers(row[1:])
        assert megabytes > 0 and seconds > 0 and per_second > 0 and peak > 50
    assert list(tmp_path.iterdir()) == []  # inputs and outputs removed


def test_serving_levers_add_the_alternative_graphs_and_the_batching_order(exported, prepared, capsys, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    script("serving").main(
        ["--model", str(exported), "--data", str(prepared), "--repeats", "1", "--latency-texts", "1", "--batch-size", "4", "--levers"]
    )  # fmt: skip
    output = capsys.readouterr().out
    rows = table(output, "| backend |")
    assert [row[0] for row in rows] == timed_backends(output) + [
        "ONNX fp32, not fused", "ONNX int8, session fuses SkipLayerNorm back", "ONNX int8, every FFN output quantised",
        "ONNX int8, 2 FFN outputs fp32", "ONNX int8, per-tensor", "ONNX int8, head quantised too",
    ]  # fmt: skip
    unfused = next(row for row in rows if row[0] == "ONNX fp32, not fused")
    assert float(unfused[5]) <= 1e-4  # the un-fused fp32 graph answers as PyTorch does
    order = output.split("Batching order (batch 4, texts/s): file order vs sorted by length\n")[1].splitlines()
    assert [line.split(":")[0] for line in order] == ["- PyTorch fp32", "- ONNX int8"]
    assert all(line.endswith("sorted by length") and " in file order, " in line for line in order)
    assert list(tmp_path.iterdir()) == []  # the lever graphs were written to a scratch folder, then removed


# profile_onnx.py


def test_profile_onnx_prints_each_operator_types_share_of_the_kernel_time(exported, prepared, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # onnxruntime writes its trace into the working folder
    graph = exported / "model.int8.onnx"
    assert script("profile_onnx").main([str(graph), "--data", str(prepared), "--texts", "5", "--threads", "1"]) == 0
    output = capsys.readouterr().out
    assert output.startswith(f"{graph}: 5 texts, kernel time ")
    rows = table(output, "| operator | ms | share |")
    shares = [float(share.rstrip("%")) for _, _, share in rows]
    assert 3 <= len(rows) <= 12 and shares == sorted(shares, reverse=True)
    # each share is rounded to one decimal, so each may read up to 0.05 above its true value
    assert all(0 < share <= 100 for share in shares) and sum(shares) <= 100 + 0.05 * len(shares) + 1e-9
    assert {"QAttention", "DynamicQuantizeMatMul", "MatMulInteger", "DynamicQuantizeLinear"} & {row[0] for row in rows}
    assert list(tmp_path.iterdir()) == []  # the profiler's trace is removed


# seed_ensemble.py


def test_seed_ensemble_scores_each_model_and_their_mean_under_the_evaluate_rule(
    exported, other_seed, prepared, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({"evaluate": {"threshold": "tuned", "per_label": True}}))
    assert script("seed_ensemble").main([str(exported), str(other_seed), "--data", str(prepared)]) == 0
    output = capsys.readouterr().out
    assert output.startswith("rule from the evaluate params: threshold tuned, objective headline_mean, per_label True")
    rows = table(output, "| model | threshold |")
    assert [row[0] for row in rows] == [str(exported), str(other_seed), "ensemble (mean)"]
    for row in rows:
        threshold, *scores = numbers(row[1:])
        assert 0 < threshold < 1 and len(scores) == 6 and all(0 <= score <= 1 for score in scores)
    assert rows[0][1:] != rows[1][1:]  # two seeds, two different models


def test_seed_ensemble_refuses_a_single_model(exported, prepared):
    with pytest.raises(SystemExit) as exit_info:
        script("seed_ensemble").main([str(exported), "--data", str(prepared)])
    assert exit_info.value.code == 2


# thresholds.py


def test_thresholds_scores_every_rule_by_cross_validation_and_on_test(exported, prepared, capsys):
    from mlbert.thresholds import OBJECTIVES

    assert script("thresholds").main(["--model", str(exported), "--data", str(prepared), "--folds", "2", "--repeats", "1"]) == 0
    rows = {row[0]: row[1:] for row in table(capsys.readouterr().out, "| rule | CV Jaccard |")}
    assert list(rows)[:3] == ["fixed 0.5", "headline_mean, global", "headline_mean, per label, shrinkage 0"]
    assert len(rows) == 1 + 5 * len(OBJECTIVES)
    assert all(0 <= value <= 1 for cells in rows.values() for value in numbers(cells))
    # A fixed rule fits nothing, so its cross-validated score is its validation score.
    splits = read_splits(prepared)
    for cells, split in ((rows["fixed 0.5"][:3], splits.validation), (rows["fixed 0.5"][3:], splits.test)):
        scores = multilabel_metrics(
            labels_to_multi_hot(split["labels"], LABELS), probabilities_of(exported, split["text"].tolist()), 0.5, LABELS
        )
        assert cells == [format_score(scores[key]) for key in HEADLINE_METRICS]


# averaging.py


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """Three epochs' checkpoints (steps 2, 4, 6) as the Trainer saves them; by validation
    headline_mean the second epoch is best and the first worst."""
    from transformers import TrainerState

    folder = tmp_path_factory.mktemp("checkpoints")
    history = [{"epoch": epoch, "step": 2 * epoch, "eval_headline_mean": mean} for epoch, mean in ((1, 0.3), (2, 0.5), (3, 0.4))]
    for entry in history:
        checkpoint = folder / f"checkpoint-{entry['step']}"
        tiny_classifier(seed=10 + entry["epoch"]).save_pretrained(checkpoint)
        TrainerState(log_history=history[: entry["epoch"]]).save_to_json(str(checkpoint / "trainer_state.json"))
    return folder


def test_averaging_scores_each_epoch_the_best_and_the_last_on_validation(exported, checkpoints, prepared, tokenizer, capsys):
    assert script("averaging").main(["--checkpoints", str(checkpoints), "--model", str(exported), "--data", str(prepared)]) == 0
    rows = table(capsys.readouterr().out, "| candidate | epochs | Jaccard | micro-F1 | macro-F1 | mean |")
    assert [row[:2] for row in rows] == [
        ["epoch 1", "1"], ["epoch 2", "2"], ["epoch 3", "3"], ["best 2", "2, 3"], ["best 3", "1, 2, 3"], ["last 3", "1, 2, 3"],
    ]  # fmt: skip
    scores = {row[0]: numbers(row[2:]) for row in rows}
    for name, (jaccard, micro, macro, mean) in scores.items():
        assert all(0 <= value <= 1 for value in (jaccard, micro, macro)), name
        assert mean == pytest.approx((jaccard + micro + macro) / 3, abs=1e-4), name
    assert scores["best 3"] == scores["last 3"]  # the same three epochs, averaged
    # An epoch alone is that checkpoint's model, not the --model folder's weights.
    from mlbert.prediction import predict_probabilities, torch_forward

    validation = read_splits(prepared).validation
    second = predict_probabilities(torch_forward(tiny_classifier(seed=12)), tokenizer, validation["text"].tolist(), len(LABELS))
    alone = multilabel_metrics(labels_to_multi_hot(validation["labels"], LABELS), second, 0.5, LABELS)
    assert rows[1][2:5] == [format_score(alone[key]) for key in HEADLINE_METRICS]


# pipeline.py


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, exported, prepared) -> Path:
    """A repository root after the evaluate stage has run on the tiny model: its metrics.json."""
    import shutil

    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(prepared, root / "data/prepared")
    shutil.copytree(exported, root / "models/trained")
    (root / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"threshold": "tuned", "per_label": True}}))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        run_path("stages/evaluate.py").main()
    return root


def test_pipeline_links_the_official_files_runs_each_stage_and_reports_the_scores(evaluated, tmp_path, capsys, monkeypatch):
    official = tmp_path / "official"
    official.mkdir()
    for name in SEMEVAL_FILES.values():
        (official / name).write_text("invented placeholder\n")
    commands = []
    monkeypatch.chdir(evaluated)
    pipeline = script("pipeline")

    def record(command: list[str], check: bool) -> subprocess.CompletedProcess:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(pipeline.subprocess, "run", record)
    assert pipeline.main(["--data-dir", str(official), "--force"]) == 0

    assert all((evaluated / "data/raw" / name).resolve() == (official / name).resolve() for name in SEMEVAL_FILES.values())
    assert [command[2:] for command in commands] == [
        ["dvc", "repro", "--single-item", stage, "--force"] for stage in ("prepare", "tokenize", "train", "evaluate", "export")
    ]
    output = capsys.readouterr().out
    stages = [row[0] for row in table(output, "| stage | wall time |")]
    assert stages == ["prepare", "tokenize", "train", "evaluate", "export", "**total**"]
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert f"Thresholds: tuned (headline_mean), global {metrics['thresholds']['default']}" in output
    splits = table(output, "| split, rule |")
    assert [row[0] for row in splits] == ["validation, tuned", "validation, 0.5", "test, tuned", "test, 0.5"]
    assert splits[2][1:] == [format_score(metrics["test"][key]) for key in ("jaccard", "f1_micro", "f1_macro", "accuracy")]
    assert table(output, "| test (12 texts) |")[0][0] == "**this pipeline**"
    per_label = table(output, "| label | test F1 |")
    assert [row[0] for row in per_label] == LABELS
    assert [float(row[4]) for row in per_label] == pytest.approx(list(metrics["thresholds"]["per_label"].values()), abs=0.005)
    assert "Target Jaccard >= 0.59, micro-F1 >= 0.7, macro-F1 >= 0.56: " in output


def test_pipeline_names_a_missing_official_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({"prepare": {"dir": "raw"}}))
    with pytest.raises(SystemExit, match="2018-E-c-En-train.txt not found"):
        script("pipeline").main(["--data-dir", str(tmp_path)])


def test_splits_shows_iterative_stratification_closer_to_the_whole_than_the_rules_it_replaced():
    splits = script("splits")
    labels = [f"l{k}" for k in range(6)]
    rng = np.random.default_rng(1)
    rates = np.array([0.35, 0.25, 0.15, 0.08, 0.04, 0.02])
    rows = [[label for label, on in zip(labels, rng.uniform(size=6) < rates) if on] for _ in range(500)]
    frame = pd.DataFrame({"id": range(500), "text": [str(i) for i in range(500)], "labels": rows})
    table = splits.measure(frame, labels, seeds=3, test_fraction=0.2, validation_fraction=0.1)
    gap = table["label gap mean (pp)"]
    for part in ("test", "validation"):
        assert gap[(part, "iterative stratification")] < gap[(part, "rarest label (before)")] < gap[(part, "random")]



# train_step.py


@pytest.fixture
def training_workspace(tokenizer, tmp_path, monkeypatch):
    """params.yaml naming a tiny two-layer base model, and a tokenized train split of invented texts."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoModel

    AutoModel.from_config(tiny_config()).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    texts = [" ".join(WORDS[i % 7 : i % 7 + 1 + i % 4]) for i in range(24)]
    encoded = dict(tokenizer(texts, truncation=True, max_length=16))
    encoded["labels"] = [[float((i + j) % 2) for j in range(len(LABELS))] for i in range(len(texts))]
    DatasetDict({"train": Dataset.from_dict(encoded)}).save_to_disk(str(tmp_path / "tokenized"))
    (tmp_path / "tokenized/labels.json").write_text(json.dumps(LABELS))
    params = {"model": {"name": str(tmp_path / "base")}, "tokenize": {"max_length": 16}, "train": {"per_device_train_batch_size": 4}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_step_times_each_freeze_setting_against_the_first(training_workspace, capsys):
    assert script("train_step").main(["--freeze", "0", "1", "2", "--data", "tokenized", "--rounds", "2", "--steps", "2"]) == 0
    output = capsys.readouterr().out
    assert "head label_aware, batch 4," in output and "median of 2 interleaved rounds of 2 steps" in output
    rows = table(output, "| freeze_layers |")
    assert [row[0] for row in rows] == ["0", "1", "2"]
    trainable = [int(row[1].split(" of ")[0].replace(",", "")) for row in rows]
    assert trainable[0] > trainable[1] > trainable[2] > 0  # each frozen layer takes parameters out of training
    for row in rows:
        seconds, samples_per_s, ratio = numbers(row[2:])
        assert seconds > 0 and samples_per_s > 0 and ratio > 0
    assert rows[0][4] == "1.00x"


def test_train_step_refuses_more_frozen_layers_than_the_model_has(training_workspace):
    from mlbert.errors import ParamsError

    with pytest.raises(ParamsError, match="train.freeze_layers is 3, but .* has 2 encoder layers"):
        script("train_step").main(["--freeze", "3", "--data", "tokenized", "--rounds", "1", "--steps", "1"])
