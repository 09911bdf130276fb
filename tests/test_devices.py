"""Where a loaded model runs: `--device` for `predict`, `serve` and `load()`.

The rules are pure functions, tested everywhere. The GPU tests run only where PyTorch sees a CUDA
GPU (`pytest -m gpu` on such a machine); without one they are skipped, and the CPU-only refusals
are tested instead."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_classifier, torch_sees_a_gpu, write_tiny_classifier_folder

from mlbert import cli
from mlbert.devices import DeviceError, device_for_backend, parse_device, resolve_device
from mlbert.prediction import load

PREDICT = str(Path(sys.executable).parent / "predict")
LABELS = ["anger", "joy"]
TEXTS = ["so happy today", "this is awful", "meh", "what a day, honestly, what a long long day"]
ALL_BACKENDS = ["openvino-int8", "onnx-int8", "onnx", "torch"]
needs_gpu = pytest.mark.skipif(not torch_sees_a_gpu(), reason="needs a CUDA GPU")
needs_no_gpu = pytest.mark.skipif(torch_sees_a_gpu(), reason="tests the refusal on a machine without a GPU")


def run_predict(*args):
    return subprocess.run([PREDICT, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return write_tiny_classifier_folder(tmp_path_factory.mktemp("model") / "export", tokenizer, LABELS)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda:0"), ("CUDA:1", "cuda:1"), (" cuda:0 ", "cuda:0")],
)
def test_devices_are_spelt_one_way(text, canonical):
    assert parse_device(text) == canonical


@pytest.mark.parametrize("text", ["gpu", "cpu:0", "auto:1", "cuda:", "cuda:-1", "mps", ""])
def test_an_unknown_device_is_named_with_the_choices(text):
    with pytest.raises(DeviceError, match="unknown device .*expected auto .*cpu, cuda or cuda:N"):
        parse_device(text)


def test_auto_is_the_first_gpu_when_there_is_one_and_the_cpu_otherwise():
    assert resolve_device("auto", gpus=2) == "cuda:0"
    assert resolve_device("auto", gpus=0) == "cpu"
    assert resolve_device("cpu", gpus=2) == "cpu"
    assert resolve_device("cuda:1", gpus=2) == "cuda:1"


def test_a_gpu_the_machine_lacks_is_refused_naming_what_it_has():
    with pytest.raises(DeviceError, match="device cuda:0: PyTorch sees no CUDA GPU"):
        resolve_device("cuda", gpus=0)
    with pytest.raises(DeviceError, match=r"device cuda:2: this machine has 2 GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2", gpus=2)


def test_auto_puts_only_the_torch_backend_on_a_gpu():
    assert device_for_backend("auto", "torch", ALL_BACKENDS, gpus=1) == "cuda:0"
    assert device_for_backend("auto", None, ALL_BACKENDS, gpus=1) == "cuda:0"  # backend auto: torch there
    assert device_for_backend("auto", "onnx-int8", ALL_BACKENDS, gpus=1) == "cpu"  # a CPU runtime, asked for
    assert device_for_backend("auto", None, ["onnx", "onnx-int8"], gpus=1) == "cpu"  # no torch weights


def test_a_gpu_named_for_a_cpu_runtime_is_refused_not_ignored():
    with pytest.raises(DeviceError, match="backend onnx runs on the CPU only; device cuda:0 needs backend torch"):
        device_for_backend("cuda", "onnx", ALL_BACKENDS, gpus=1)
    with pytest.raises(DeviceError, match=r"device cuda:0 needs the torch backend, and this folder has none \(onnx\)"):
        device_for_backend("cuda", None, ["onnx"], gpus=1)


def test_a_misspelt_device_is_a_usage_error_before_anything_loads(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--device", "gpu", "hello"])
    assert exit_info.value.code == 2
    assert "--device: unknown device 'gpu'" in capsys.readouterr().err


def test_the_cpu_device_loads_there(model_dir):
    classifier = load(model_dir, device="cpu")
    assert classifier.device == "cpu" and str(next(classifier.model.parameters()).device) == "cpu"


@needs_no_gpu
def test_asking_for_a_gpu_on_a_machine_without_one_is_one_line_and_exit_1(model_dir):
    result = run_predict("--model", model_dir, "--device", "cuda", "hello")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("predict: error: device cuda:0: PyTorch sees no CUDA GPU") and result.stderr.count("\n") == 1


@pytest.mark.gpu
@needs_gpu
def test_on_a_gpu_the_torch_backend_gives_the_cpu_probabilities(model_dir):
    cpu = load(model_dir, backend="torch", device="cpu").predict_proba(TEXTS)
    gpu = load(model_dir, backend="torch", device="cuda").predict_proba(TEXTS)
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)


@pytest.mark.gpu
@needs_gpu
def test_on_a_gpu_auto_loads_torch_there_without_timing_the_cpu_backends(model_dir):
    classifier = load(model_dir)
    assert (classifier.backend, classifier.device, classifier.choice) == ("torch", "cuda:0", {"gpu": "cuda:0"})
    assert str(next(classifier.model.parameters()).device) == "cuda:0"


@pytest.mark.gpu
@needs_gpu
def test_predict_says_it_chose_the_gpu(model_dir):
    result = run_predict("--model", model_dir, "hello")
    assert result.returncode == 0, result.stderr
    assert "backend auto: torch on cuda:0" in result.stderr and '"labels"' in result.stdout


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("head", ["cls", "label_aware"])
def test_both_heads_move_to_the_gpu_whole(head, tokenizer):
    import torch

    model = tiny_classifier(head, tokenizer).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        cpu = model(**batch).logits
        model.to("cuda")
        gpu = model(**{name: values.to("cuda") for name, values in batch.items()}).logits.cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-4)
