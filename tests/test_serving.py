"""The label-aware head and the ONNX and OpenVINO exports on a tiny randomly initialised BERT
(seconds, no data): every backend gives PyTorch's probabilities, and the label-aware model saves
and loads back."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tiny_models import tiny_config

from mlbert.devices import available_cores
from mlbert.export import write_onnx_files, write_openvino_file
from mlbert.label_aware import build_label_aware, label_prompt, save_label_aware_config
from mlbert.onnx_export import INT8_FILE, ONNX_FILE, UNFUSED_AT_LOAD, ffn_output_nodes, quantize_onnx
from mlbert.openvino_export import OPENVINO_FILE, OPENVINO_WEIGHTS
from mlbert.prediction import available_backends, load, share_cores

LABELS = ["anger", "joy", "very_sad"]
TEXTS = ["I am so happy today!", "This is awful", "meh", "what a long and winding sentence this one is, truly"]


def write_folder(folder, model, tokenizer, label_aware: bool):
    from safetensors.torch import save_file

    folder.mkdir()
    if label_aware:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
        save_label_aware_config(model, folder)
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "thresholds.json").write_text(json.dumps({"default": 0.5, "per_label": {"joy": 0.3}}))
    return folder


@pytest.fixture(scope="module", params=["cls", "label_aware"])
def exported(request, tmp_path_factory, tokenizer):
    """A model folder with model.onnx, model.int8.onnx and the OpenVINO int8 model, written as the
    export stage does."""
    from transformers import AutoModel, BertForSequenceClassification

    torch.manual_seed(0)
    config = tiny_config()
    if request.param == "label_aware":
        model = build_label_aware(AutoModel.from_config(config), tokenizer, LABELS)
    else:
        config.id2label, config.label2id = dict(enumerate(LABELS)), {l: i for i, l in enumerate(LABELS)}
        model = BertForSequenceClassification(config)
    folder = write_folder(tmp_path_factory.mktemp(request.param) / "export", model.eval(), tokenizer, request.param == "label_aware")
    write_onnx_files(folder, quantize=True, fp32_ffn_outputs=1)
    write_openvino_file(folder, TEXTS * 5)
    return folder


def test_the_label_prompt_points_each_label_at_its_own_tokens(tokenizer):
    prompt = label_prompt(tokenizer, LABELS)
    pieces = tokenizer.convert_ids_to_tokens(prompt["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    spelled = ["".join(pieces[k].removeprefix("##") for k in tokens) for tokens in prompt["label_tokens"]]
    assert spelled == ["anger", "joy", "verysad"]  # "very_sad" is read as two words


def test_the_label_aware_model_scores_every_label_and_ignores_padding(tokenizer):
    from transformers import AutoModel

    torch.manual_seed(0)
    model = build_label_aware(AutoModel.from_config(tiny_config()), tokenizer, LABELS).eval()
    alone = tokenizer(["This is awful"], return_tensors="pt")
    padded = tokenizer(["This is awful", "a much longer text than the first one"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        one = model(**alone).logits
        two = model(**padded).logits
    assert one.shape == (1, 3) and two.shape == (2, 3)
    torch.testing.assert_close(one[0], two[0], atol=1e-5, rtol=0)


def test_a_label_segment_that_overflows_the_model_is_a_params_error(tokenizer):
    from transformers import AutoModel

    from mlbert.modeling import check_label_segment_fits
    from mlbert.params import ParamsError

    model = build_label_aware(AutoModel.from_config(tiny_config()), tokenizer, LABELS)  # 128 positions
    check_label_segment_fits(model, 120, "tiny")  # 120 + 5 label-segment tokens fit
    with pytest.raises(ParamsError, match="tokenize.max_length 128 plus the 5-token label segment .* is 133, more than the 128"):
        check_label_segment_fits(model, 128, "tiny")


def test_onnx_beyond_the_parity_tolerance_fails_naming_the_difference(exported, tmp_path):
    from safetensors.torch import load_file, save_file

    from mlbert.errors import ParityError
    from mlbert.export import check_parity

    gold = np.zeros((len(TEXTS), len(LABELS)), dtype=np.int8)
    report = check_parity(exported, TEXTS, gold, tolerance=1e-4)
    assert report["onnx"]["max_abs_diff"] <= 1e-4
    assert "label_agreement" in report["onnx-int8"] and "label_agreement" in report["openvino-int8"]
    # A folder whose safetensors no longer match its ONNX graph (a head bias moved by 1).
    stale = tmp_path / "stale"
    shutil.copytree(exported, stale)
    weights = load_file(str(stale / "model.safetensors"))
    bias = next(name for name in weights if name.endswith(("classifier.bias", "scorer.bias")))
    weights[bias] = weights[bias] + 1.0
    save_file(weights, str(stale / "model.safetensors"))
    with pytest.raises(ParityError, match=r"model.onnx differs from the PyTorch model by up to .* \(export.parity_tolerance is 0.0001\)"):
        check_parity(stale, TEXTS, gold, tolerance=1e-4)


def test_parity_against_probabilities_already_computed_reports_what_a_pytorch_pass_would(exported):
    from mlbert.export import check_parity

    gold = np.zeros((len(TEXTS), len(LABELS)), dtype=np.int8)
    evaluated = load(exported, backend="torch").predict_proba(TEXTS, batch_size=3)  # evaluate's own batching
    given = check_parity(exported, TEXTS, gold, tolerance=1e-4, expected=evaluated)
    computed = check_parity(exported, TEXTS, gold, tolerance=1e-4)
    assert given.keys() == computed.keys()
    for backend in ("onnx", "onnx-int8", "openvino-int8"):
        assert given[backend]["label_agreement"] == computed[backend]["label_agreement"]
        assert given[backend]["max_abs_diff"] == pytest.approx(computed[backend]["max_abs_diff"], abs=1e-5)
    with pytest.raises(ValueError, match=r"expected probabilities of shape \(4, 3\)"):
        check_parity(exported, TEXTS, gold, tolerance=1e-4, expected=evaluated[:2])


def test_an_int8_backend_that_decides_unlike_pytorch_fails_the_gate_naming_it(exported, tmp_path):
    from mlbert.errors import ParityError
    from mlbert.export import check_parity

    gold = np.zeros((len(TEXTS), len(LABELS)), dtype=np.int8)
    # Thresholds at each label's PyTorch probability on the first text: the smallest int8 error
    # flips decisions there, so a gate of 100% agreement cannot pass and names the backend.
    folder = tmp_path / "strict"
    shutil.copytree(exported, folder)
    first = load(folder, backend="torch").predict_proba(TEXTS[:1])[0]
    (folder / "thresholds.json").write_text(json.dumps({"default": 0.5, "per_label": dict(zip(LABELS, map(float, first)))}))
    report = check_parity(folder, TEXTS, gold, tolerance=1e-4, min_int8_agreement=0.0)
    assert min(report["onnx-int8"]["label_agreement"], report["openvino-int8"]["label_agreement"]) < 1.0
    with pytest.raises(ParityError, match=r"\((onnx|openvino)-int8\) agrees with the PyTorch model on .*% of the label decisions on 4 test texts \(export.int8_min_agreement is 100.00%\)"):
        check_parity(folder, TEXTS, gold, tolerance=1e-4, min_int8_agreement=1.0)


def test_auto_loads_the_backend_timed_fastest_here_and_caches_the_timing(exported, tmp_path, monkeypatch):
    from mlbert.backend_choice import CACHE_FILE, choose_fastest

    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path / "cache"))
    assert available_backends(exported) == ["openvino-int8", "onnx-int8", "onnx", "torch"]
    first = load(exported)
    speeds = first.choice["texts_per_s"]
    assert set(speeds) == {"openvino-int8", "onnx-int8", "onnx", "torch"} and not first.choice["cached"]
    assert first.backend == choose_fastest(speeds)
    np.testing.assert_array_equal(first.predict_proba(TEXTS), load(exported, backend=first.backend).predict_proba(TEXTS))
    cache = tmp_path / "cache" / CACHE_FILE
    written = cache.read_bytes()
    again = load(exported, backend="auto")
    assert again.backend == first.backend and again.choice == {"texts_per_s": speeds, "cached": True}
    assert cache.read_bytes() == written  # a cached choice times nothing
    # A folder with other files is another measurement, among what it holds.
    fewer = tmp_path / "without-int8"
    shutil.copytree(exported, fewer)
    for name in (OPENVINO_FILE, OPENVINO_WEIGHTS, INT8_FILE):
        (fewer / name).unlink()
    other = load(fewer)
    assert not other.choice["cached"] and set(other.choice["texts_per_s"]) == {"onnx", "torch"}
    assert other.backend in ("onnx", "torch")


def onnx_int8_far_ahead(runners, tokenizer, **_):
    """A timing in which onnx-int8 wins by a mile (what AVX2-only CPUs measure, exaggerated)."""
    return {name: 1000.0 if name == "onnx-int8" else 10.0 + k for k, name in enumerate(runners)}


def test_auto_for_a_server_leaves_out_backends_whose_answers_move_with_their_batch_mates(exported, tmp_path, monkeypatch):
    from mlbert import backend_choice

    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(backend_choice, "time_backends", onnx_int8_far_ahead)
    assert load(exported).backend == "onnx-int8"  # `predict`: the fastest
    steady = load(exported, batch_independent=True)
    assert steady.backend != "onnx-int8" and "onnx-int8" not in steady.choice["texts_per_s"]
    assert load(exported, backend="onnx-int8", batch_independent=True).backend == "onnx-int8"  # named: as asked


def test_with_nothing_but_a_batch_dependent_backend_auto_warns_and_uses_it():
    from mlbert.prediction import auto_candidates

    present = ["openvino-int8", "onnx-int8", "onnx", "torch"]
    assert auto_candidates(present, batch_independent=False) == present
    assert auto_candidates(present, batch_independent=True) == ["openvino-int8", "onnx", "torch"]
    with pytest.warns(UserWarning, match="only onnx-int8 here, whose answers depend on the other texts of a batch"):
        assert auto_candidates(["onnx-int8"], batch_independent=True) == ["onnx-int8"]


@pytest.mark.parametrize("backend", ["auto", "onnx-int8"])
def test_serve_says_whether_its_answers_can_depend_on_other_requests(exported, backend, tmp_path, monkeypatch, capsys):
    import uvicorn

    from mlbert import backend_choice, serving

    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(backend_choice, "time_backends", onnx_int8_far_ahead)
    started = []
    real_create_app = serving.create_app
    monkeypatch.setattr(serving, "create_app", lambda classifier, folder, limits: started.append((classifier, limits)) or real_create_app(classifier, folder, limits))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # built and configured, not listening
    assert serving.main(["--model", str(exported), "--backend", backend]) == 0
    (classifier, limits), err = started[0], capsys.readouterr().err
    steady = serving.metadata(classifier, exported, limits)["batch_independent"]
    if backend == "auto":
        assert classifier.backend != "onnx-int8" and steady is True and "warning" not in err
    else:
        assert classifier.backend == "onnx-int8" and steady is False
        assert "serve: warning: backend onnx-int8: a text's labels can change with the other requests batched with it" in err


def test_onnx_fp32_gives_pytorch_probabilities_within_1e_4(exported):
    expected = load(exported, backend="torch").predict_proba(TEXTS, batch_size=2)
    got = load(exported, backend="onnx").predict_proba(TEXTS, batch_size=2)
    assert np.abs(got - expected).max() <= 1e-4


@pytest.mark.parametrize("backend", ["onnx-int8", "openvino-int8"])
def test_int8_backends_stay_close_to_pytorch(exported, backend):
    expected = load(exported, backend="torch").predict_proba(TEXTS)
    got = load(exported, backend=backend).predict_proba(TEXTS)
    # A smoke check on a random tiny model: it loads, answers in the label order and stays near.
    # Its int8 error depends on the CPU: <= 0.04 with VNNI; 0.075 for OpenVINO on AVX2 alone, whose
    # int8 dot products sum pairs in saturating int16 (NNCF guards only the first layer). The
    # real model's decisions are gated in the export stage (99.1% agreement on that AVX2 CPU).
    assert np.abs(got - expected).max() < 0.1


def test_openvino_keeps_each_of_its_streams_busy_with_a_batch_and_answers_alike(exported):
    # By default OpenVINO's throughput mode picks the streams (2 for the real model on 2 cores; it
    # may keep this tiny one on 1); `concurrency` names them, and a long list runs that many
    # batches at once.
    assert load(exported, backend="openvino-int8").batches_at_once >= 1
    one, two = (load(exported, backend="openvino-int8", concurrency=n) for n in (1, 2))
    assert (one.batches_at_once, two.batches_at_once) == (1, 2)
    texts = TEXTS * 8
    np.testing.assert_allclose(two.predict_proba(texts, batch_size=2), one.predict_proba(texts, batch_size=2), atol=1e-6)


def test_the_openvino_model_takes_the_tokenizer_inputs_by_name_and_returns_logits(exported):
    import openvino as ov

    model = ov.Core().read_model(str(exported / OPENVINO_FILE))
    assert [port.get_any_name() for port in model.inputs] == ["input_ids", "token_type_ids", "attention_mask"]
    assert model.outputs[0].get_any_name() == "logits"
    assert all(port.get_partial_shape().is_dynamic for port in model.inputs)


def test_int8_keeps_the_first_ffn_output_projections_in_fp32(exported, tmp_path):
    import onnx

    fp32_graph = onnx.load(str(exported / ONNX_FILE))
    projections = ffn_output_nodes(fp32_graph)
    assert len(projections) == 2  # one per layer of the tiny model
    kept = quantize_onnx(exported / ONNX_FILE, tmp_path / "int8.onnx", fp32_ffn_outputs=1)
    assert projections[0] in kept and projections[1] not in kept
    plain_matmuls = {node.name for node in onnx.load(str(tmp_path / "int8.onnx")).graph.node if node.op_type == "MatMul"}
    assert projections[0] in plain_matmuls and projections[1] not in plain_matmuls


@pytest.mark.parametrize("graph", [ONNX_FILE, INT8_FILE])
def test_residual_layernorm_and_gelu_stay_standard_ops_through_session_load(exported, graph, tmp_path):
    """The CPU kernels of SkipLayerNormalization and BiasGelu are slower than the ops they fuse, so
    the export splits them and sessions are told not to fuse them back."""
    import onnx
    import onnxruntime as ort

    def op_types(model):
        return {node.op_type for node in model.graph.node}

    assert not op_types(onnx.load(str(exported / graph))) & {"SkipLayerNormalization", "BiasGelu"}
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "as_loaded.onnx")
    ort.InferenceSession(str(exported / graph), options, disabled_optimizers=list(UNFUSED_AT_LOAD))
    as_loaded = op_types(onnx.load(str(tmp_path / "as_loaded.onnx")))
    assert {"LayerNormalization", "Gelu"} <= as_loaded
    assert not as_loaded & {"SkipLayerNormalization", "BiasGelu", "SkipSimplifiedLayerNormalization"}


def test_predictions_apply_the_exported_thresholds(exported, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(exported, folder)
    anger, joy, very_sad = map(float, load(folder, backend="onnx").predict_proba(["hello"])[0])

    def labels_under(per_label):
        (folder / "thresholds.json").write_text(json.dumps({"default": 0.5, "per_label": per_label}))
        (result,) = load(folder, backend="onnx").predict(["hello"])
        assert set(result["scores"]) == set(LABELS)
        return result["labels"]

    # Each threshold a hair above or below the label's own probability on this text.
    above, below = 1e-3, -1e-3
    assert labels_under({"anger": anger + above, "joy": joy + below, "very_sad": very_sad + below}) == ["joy", "very_sad"]
    assert labels_under({"anger": anger + below, "joy": joy + above, "very_sad": very_sad + above}) == ["anger"]


def test_a_missing_backend_file_is_named(exported, tmp_path):
    folder = tmp_path / "no-int8"
    shutil.copytree(exported, folder)
    for name in (INT8_FILE, OPENVINO_FILE, OPENVINO_WEIGHTS):
        (folder / name).unlink()
    # auto times what the folder holds: which of the two wins on a tiny model is the machine's call
    # (on a loaded CPU torch can), but a backend whose files are gone is never a candidate.
    assert load(folder).backend in ("onnx", "torch")
    with pytest.raises(FileNotFoundError, match="backend onnx-int8: .*model.int8.onnx not found"):
        load(folder, backend="onnx-int8")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        load(folder, backend="tensorrt")


@pytest.mark.skipif(available_cores() < 2, reason="two streams of one thread need two cores")
def test_two_openvino_workers_of_one_thread_each_get_a_stream_each(exported):
    # OpenVINO counts the threads of all its streams together: given one for two streams it
    # compiled a single stream, and two server workers took turns on one core.
    assert load(exported, backend="openvino-int8", threads=1, concurrency=2).batches_at_once == 2


def test_several_onnxruntime_or_pytorch_passes_at_once_share_the_cores_unless_told_otherwise():
    # (threads per pass, passes a long list runs at once)
    assert share_cores(None, 4, cores=2) == (1, 2)  # four server workers on two cores: one thread each, two busy
    assert share_cores(None, 2, cores=16) == (8, 2)
    assert share_cores(3, 4, cores=2) == (3, 1)  # asked for: as asked
    assert share_cores(1, 4, cores=16) == (1, 4)
    assert share_cores(None, 1, cores=2) == (None, 1) and share_cores(None, None, cores=2) == (None, 1)  # the runtime's default
    assert share_cores(2, None, cores=2) == (2, 1)


def test_auto_times_onnxruntime_with_as_many_passes_at_once_as_the_server_runs(exported):
    # Timed one pass of one thread at a time, onnxruntime would be compared with OpenVINO's
    # streams at a fraction of the cores it gets under the server's workers.
    _, at_once = share_cores(None, 4, available_cores())
    assert load(exported, backend="onnx-int8", concurrency=4).batches_at_once == at_once
    assert load(exported, backend="onnx-int8").batches_at_once == 1


def test_the_openvino_backend_answers_threads_calling_it_at_once_each_with_its_own_texts(exported):
    from concurrent.futures import ThreadPoolExecutor

    classifier = load(exported, backend="openvino-int8", threads=1, concurrency=2)
    alone = [classifier.predict_proba([text]) for text in TEXTS]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda text: classifier.predict_proba([text]), TEXTS * 5))
    for got, want in zip(together, alone * 5):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_predict_says_on_stderr_which_backend_auto_chose_and_by_what_speeds(exported, tmp_path, monkeypatch, capsys):
    from mlbert.cli import main

    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--model", str(exported), "so happy today"]) == 0
    first = capsys.readouterr()
    assert first.err.startswith("backend auto: ") and "(timed now, texts/s at batch 32 on this machine: " in first.err
    chosen = first.err.split()[2]
    assert chosen in ("openvino-int8", "onnx-int8", "onnx", "torch") and json.loads(first.out)["text"] == "so happy today"
    assert main(["--model", str(exported), "so happy today"]) == 0
    assert capsys.readouterr().err.startswith(f"backend auto: {chosen} (cached timing, ")
    assert main(["--model", str(exported), "--backend", "torch", "so happy today"]) == 0
    assert capsys.readouterr().err == ""  # a named backend is not timed
