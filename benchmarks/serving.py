"""Serving speed and fidelity of the exported folder: PyTorch fp32, PyTorch bf16 autocast, ONNX fp32,
ONNX int8 and OpenVINO int8, side by side in one process on the same texts and the same batches.

    python benchmarks/serving.py                          # models/export on the prepared test split
    python benchmarks/serving.py --levers                 # also: what each optimisation adds
    python benchmarks/serving.py --levers --split validation   # where export settings are chosen
    python benchmarks/serving.py --load                   # also: `serve` under 16 concurrent clients
    python benchmarks/serving.py --openvino               # also: OpenVINO on model.onnx (fp32, bf16, int8)
    python benchmarks/serving.py --ctranslate2            # also: CTranslate2 (int8, fp32); pip install ctranslate2

Throughput is texts/s at batch 32 over the whole test split, timed as whole `predict_probabilities`
calls (what `predict` runs: tokenization, batches of similar length, padding, forward passes,
sigmoid); latency is p50/p95 over single texts. Agreement is the share of the (text, label)
decisions, with the exported thresholds, that match PyTorch fp32. `--levers` also measures
file-order batches, the un-fused ONNX graph, onnxruntime's own SkipLayerNorm fusion and other
quantisation settings.

The OpenVINO int8 row is the export's own openvino_model.xml (converted from PyTorch, NNCF int8).
`--openvino` adds OpenVINO on the exported model.onnx instead: fp32, bf16, and int8 by the same NNCF
quantisation calibrated on 300 validation texts (never test).
`--ctranslate2` adds the encoder converted to CTranslate2 (BERT-architecture encoders), in int8
(weights quantised ahead, activations at run time) and fp32, with the export's own head on top.

`--load` then starts `serve` (a real server process) on `--serve-backend` (default: what `serve`
picks: `auto`, timed on this machine), once per `--serve-batching` value, and sends it every
text of the split as its own request from `--clients` concurrent clients, each waiting for its
answer before sending the next: throughput against the same backend's offline batch throughput
above, latency percentiles, and how many texts the server batched together. `--litserve` adds the
same load test on LitServe (benchmarks/litserve_app.py: same folder, backend, batch size and wait),
the other server library `serve` could have been built on.

    python benchmarks/serving.py --load --serve-batching 4x4 1x32   # four batches of 4 in flight, then one of 32
    python benchmarks/serving.py --load --litserve              # serve and LitServe; pip install litserve
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import format_score, multilabel_metrics
from mlbert.normalise import normalise_texts
from mlbert.onnx_export import INT8_FILE, ONNX_FILE, export_onnx, quantize_onnx
from mlbert.openvino_export import OPENVINO_FILE, openvino_forward
from mlbert.paths import EXPORT_DIR, PREPARED_DIR
from mlbert.prediction import (
    Classifier,
    Forward,
    load,
    onnx_forward,
    predict_probabilities,
    session_forward,
    torch_forward,
)

# The rows of the offline table that run the same forward pass as each `serve --backend`.
OFFLINE_ROW = {"torch": "PyTorch fp32", "onnx": "ONNX fp32", "onnx-int8": "ONNX int8", "openvino-int8": "OpenVINO int8"}

# Beyond this, PyTorch bf16 autocast is left out of the table (emulated: see bf16_slowdown).
BF16_MAX_SLOWDOWN = 3.0

QUANTISATION_LEVERS = {
    "ONNX int8, every FFN output quantised": {"fp32_ffn_outputs": 0},
    "ONNX int8, 2 FFN outputs fp32": {"fp32_ffn_outputs": 2},
    "ONNX int8, per-tensor": {"per_channel": False, "fp32_ffn_outputs": 0},
    "ONNX int8, head quantised too": {"exclude_head": False, "fp32_ffn_outputs": 0},
}


def timed_pass(
    forward: Forward, tokenizer, texts: Sequence[str], num_labels: int, batch_size: int, batches_at_once: int = 1
) -> tuple[np.ndarray, float]:
    """Probabilities for `texts` in batches of similar length, and the wall time of the call."""
    start = time.perf_counter()
    probabilities = predict_probabilities(forward, tokenizer, texts, num_labels, batch_size, batches_at_once=batches_at_once)
    return probabilities, time.perf_counter() - start


def file_order_seconds(forward: Forward, tokenizer, texts: Sequence[str], num_labels: int, batch_size: int) -> float:
    """The wall time of the same work in batches of consecutive texts, as they come in the file."""
    start = time.perf_counter()
    for begin in range(0, len(texts), batch_size):
        predict_probabilities(forward, tokenizer, texts[begin : begin + batch_size], num_labels, batch_size)
    return time.perf_counter() - start


def latency_ms(forward: Forward, tokenizer, texts: Sequence[str], num_labels: int) -> tuple[float, float]:
    """p50 and p95 of single-text predictions, tokenization included (what a request costs)."""
    timings = [1000 * timed_pass(forward, tokenizer, [text], num_labels, batch_size=1)[1] for text in texts]
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def bf16_forward(model) -> Forward:
    import torch

    plain = torch_forward(model)

    def forward(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(batch)

    return forward


def bf16_slowdown(fp32: Forward, bf16: Forward, tokenizer, texts: Sequence[str], num_labels: int) -> float:
    """How many times longer a bf16-autocast batch takes than an fp32 one (one batch each, after a
    warm-up): on a CPU without bf16 units autocast is emulated, and a full pass would take hours."""
    sample = list(texts[:8])
    seconds = []
    for forward in (fp32, bf16):
        predict_probabilities(forward, tokenizer, sample, num_labels, len(sample))
        seconds.append(timed_pass(forward, tokenizer, sample, num_labels, len(sample))[1])
    return seconds[1] / seconds[0]


def plain_onnx_forward(path: Path) -> Forward:
    """An onnxruntime session with every default fusion, as `InferenceSession(path)` gives."""
    import onnxruntime as ort

    return session_forward(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))


def compiled_forward(compiled) -> Forward:
    names = [port.get_any_name() for port in compiled.inputs]
    request = compiled.create_infer_request()

    def forward(batch):
        return request.infer({name: batch[name] for name in names})[compiled.outputs[0]]

    return forward


def openvino_backends(model_dir: Path, tokenizer, calibration_texts: Sequence[str]) -> dict[str, Forward]:
    """OpenVINO on the exported model.onnx: fp32, bf16, and NNCF int8 calibrated on `calibration_texts`
    (the export's own OpenVINO model is converted from PyTorch instead)."""
    import nncf
    import openvino as ov

    core = ov.Core()
    model = ov.convert_model(str(model_dir / ONNX_FILE))
    names = [port.get_any_name() for port in model.inputs]
    encoded = tokenizer(list(calibration_texts), truncation=True)
    samples = [{name: np.asarray([encoded[name][i]], dtype=np.int64) for name in names} for i in range(len(calibration_texts))]
    quantized = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples))
    latency = {"PERFORMANCE_HINT": "LATENCY"}
    return {
        "OpenVINO fp32, model.onnx": compiled_forward(core.compile_model(model, "CPU", {**latency, "INFERENCE_PRECISION_HINT": "f32"})),
        "OpenVINO bf16, model.onnx": compiled_forward(core.compile_model(model, "CPU", {**latency, "INFERENCE_PRECISION_HINT": "bf16"})),
        # The runtime's default precision for what stays unquantised (bf16 where the CPU has it).
        "OpenVINO int8, model.onnx": compiled_forward(core.compile_model(quantized, "CPU", latency)),
    }


def ctranslate2_backends(reference: Classifier, scratch: Path) -> dict[str, Forward]:
    """The fine-tuned encoder on CTranslate2, int8 and fp32; the head's few weights run in numpy.

    CTranslate2 converts encoders of the BERT architecture only; the label-aware head's label
    segment is prepended here exactly as its `forward` does."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError as error:
        raise SystemExit("--ctranslate2 needs the ctranslate2 package: pip install ctranslate2") from error
    from mlbert.label_aware import LabelAwareClassifier

    model = reference.model
    label_aware = isinstance(model, LabelAwareClassifier)
    encoder = model.encoder if label_aware else model.base_model
    if encoder.config.model_type != "bert":
        raise SystemExit(f"--ctranslate2: this benchmark converts BERT encoders only, not {encoder.config.model_type!r}")
    # The converter asserts absolute positions, the only kind transformers 5's BERT implements;
    # configs written by transformers 5 no longer carry the key.
    if not hasattr(encoder.config, "position_embedding_type"):
        encoder.config.position_embedding_type = "absolute"
    encoder.save_pretrained(scratch / "encoder")
    reference.tokenizer.save_pretrained(scratch / "encoder")
    if label_aware:
        prompt = model.prompt_ids.numpy().astype(np.int32)
        pooling = model.pooling.numpy()
        weight, bias = model.scorer.weight.detach().numpy()[0], float(model.scorer.bias.detach())
        text_type = model.text_type_id if model.uses_token_types else None
    else:  # BertForSequenceClassification: classifier(pooler output)
        weight, bias = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()

    def forward_for(compute_type: str) -> Forward:
        folder = scratch / f"ctranslate2-{compute_type}"
        quantization = None if compute_type == "float32" else compute_type
        TransformersConverter(str(scratch / "encoder")).convert(str(folder), quantization=quantization)
        engine = ctranslate2.Encoder(str(folder), device="cpu", compute_type=compute_type)

        def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
            ids, lengths = batch["input_ids"].astype(np.int32), batch["attention_mask"].sum(1).astype(np.int32)
            if not label_aware:
                types = batch.get("token_type_ids")
                output = engine.forward_batch(
                    ctranslate2.StorageView.from_array(ids), ctranslate2.StorageView.from_array(lengths),
                    token_type_ids=None if types is None else types.tolist(),
                )  # fmt: skip
                return np.asarray(output.pooler_output) @ weight.T + bias
            # The label segment replaces the text's own [CLS], as LabelAwareClassifier.forward does.
            ids = np.concatenate([np.broadcast_to(prompt, (len(ids), len(prompt))), ids[:, 1:]], axis=1)
            lengths = lengths + len(prompt) - 1
            types = None
            if text_type is not None:
                types = np.zeros_like(ids)
                types[:, len(prompt) :] = text_type
                types = types.tolist()
            output = engine.forward_batch(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(ids)), ctranslate2.StorageView.from_array(lengths),
                token_type_ids=types,
            )  # fmt: skip
            hidden = np.asarray(output.last_hidden_state)[:, : len(prompt)]
            return np.einsum("lp,bph->blh", pooling, hidden) @ weight + bias

        return forward

    return {"CTranslate2 int8": forward_for("int8"), "CTranslate2 fp32": forward_for("float32")}


def lever_backends(reference: Classifier, model_dir: Path, scratch: Path) -> dict[str, Forward]:
    """The graphs the export chose against: un-fused, re-fused at load, other quantisations."""
    export_onnx(reference.model, reference.tokenizer, scratch / "unfused.onnx")
    backends = {
        "ONNX fp32, not fused": onnx_forward(scratch / "unfused.onnx"),
        "ONNX int8, session fuses SkipLayerNorm back": plain_onnx_forward(model_dir / INT8_FILE),
    }
    for name, kwargs in QUANTISATION_LEVERS.items():
        path = scratch / (name.replace(" ", "_").replace(",", "") + ".onnx")
        quantize_onnx(model_dir / ONNX_FILE, path, **kwargs)
        backends[name] = onnx_forward(path)
    return backends


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A server `command` listening on `port`, ready once GET /health answers 200, stopped with
    SIGTERM sent to its whole process group (LitServe runs its workers in child processes)."""

    def __init__(self, command: Sequence[str], port: int):
        self.port = port
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop()): a pipe nobody reads could fill and stall the server
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{command[1]} exited: {self.log.read().decode(errors='replace')[-2000:]}")
            try:
                if self.request("/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{command[1]} did not answer /health within 300 s")

    def request(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str) -> dict:
        return json.loads(self.request(path)[1])

    def stop(self) -> None:
        """SIGTERM to the group, then wait until every process in it has exited (SIGKILL after 60 s),
        so that nothing of this server competes for the cores with what is measured next."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while True:
            self.process.poll()  # reap the leader, or it stays in the group as a zombie
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                os.killpg(group, signal.SIGKILL)
                break
            time.sleep(0.1)
        self.process.wait()
        self.log.close()


def load_test(port: int, texts: Sequence[str], clients: int) -> tuple[float, list[float]]:
    """Every text as its own request, from `clients` threads that each wait for an answer before
    sending again (keep-alive connections); the wall time and each request's latency in ms."""
    next_text, lock, latencies, failures = iter(range(len(texts))), threading.Lock(), [], []

    def client() -> None:
        try:
            send_all()
        except Exception as error:  # noqa: BLE001 - re-raised below, after every client stopped
            failures.append(error)

    def send_all() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                index = next(next_text, None)
            if index is None:
                break
            body = json.dumps({"texts": [texts[index]]})
            start = time.perf_counter()
            connection.request("POST", "/predict", body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"request {index}: HTTP {response.status}: {answer[:200]!r}")
            elapsed = 1000 * (time.perf_counter() - start)
            with lock:
                latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} of {clients} clients failed; the first: {failures[0]}")
    return time.perf_counter() - start, latencies


class LoadResult(NamedTuple):
    server: str
    backend: str
    seconds: float
    latencies: list[float]
    texts_per_pass: float


def parse_batching(value: str) -> tuple[int, int] | None:
    """A `--serve-batching` value: `default` -> None (the server's own), `4x8` -> (4 workers, batches of 8)."""
    if value in ("default", ""):
        return None
    workers, _, batch = value.partition("x")
    if not (workers.isdigit() and batch.isdigit() and int(workers) > 0 and int(batch) > 0):
        raise argparse.ArgumentTypeError(f"{value!r}: expected default or WORKERSxBATCH, e.g. 4x4")
    return int(workers), int(batch)


def batching_flags(value: str) -> str:
    """`--serve-batching` values as server flags: `default` -> none, `4x8` -> `--workers 4 --max-batch-size 8`."""
    parsed = parse_batching(value)
    return "" if parsed is None else f"--workers {parsed[0]} --max-batch-size {parsed[1]}"


def litserve_flags(value: str) -> str:
    """The same batching for LitServe (`default`: serve's CPU defaults, spelt out), whose workers are
    processes: with several, each gets its share of the cores, as serve's passes do."""
    from mlbert.devices import available_cores
    from mlbert.serving import CPU_BATCHING

    workers, batch = parse_batching(value) or (CPU_BATCHING["workers"], CPU_BATCHING["max_batch_size"])
    return f"--workers {workers} --max-batch-size {batch}" + (f" --threads {max(1, available_cores() // workers)}" if workers > 1 else "")


def checked_batching(value: str) -> str:
    parse_batching(value)  # refused at parse time, before anything is measured
    return value


def serve_under_load(model: Path, backend: str, flags: str, texts: Sequence[str], clients: int, max_wait_ms: float) -> LoadResult:
    """`serve` (a real server process, with the extra `flags`) under the load test; the backend it
    ran (what `auto` chose on this machine, or `backend`) and the texts per forward pass from its
    /metadata counters."""
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "mlbert.serving", "--model", str(model), "--backend", backend, "--port", str(port),
         "--max-wait-ms", str(max_wait_ms), "--log-level", "warning", *shlex.split(flags)],
        port,
    )  # fmt: skip
    try:
        served_by = server.get("/metadata")["backend"]
        load_test(port, texts[: 4 * clients], clients)  # warm-up: connections, kernels
        before = server.get("/metadata")["served"]
        seconds, latencies = load_test(port, texts, clients)
        after = server.get("/metadata")["served"]
    finally:
        server.stop()
    per_pass = (after["texts"] - before["texts"]) / max(after["batches"] - before["batches"], 1)
    return LoadResult(f"`serve --backend {backend}{' ' + flags if flags else ''}`", served_by, seconds, latencies, per_pass)


def litserve_under_load(model: Path, backend: str, flags: str, texts: Sequence[str], clients: int, max_wait_ms: float) -> LoadResult:
    """The same load test on LitServe (benchmarks/litserve_app.py) with the same backend, batch
    size and wait; the texts per forward pass from the batch log its worker writes."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="litserve-") as scratch:
        batch_log = Path(scratch) / "batches.txt"
        server = ServerProcess(
            [sys.executable, str(Path(__file__).with_name("litserve_app.py")), "--model", str(model), "--backend", backend,
             "--port", str(port), "--max-wait-ms", str(max_wait_ms), "--batch-log", str(batch_log), *shlex.split(flags)],
            port,
        )  # fmt: skip
        try:
            load_test(port, texts[: 4 * clients], clients)
            warm_up = len(batch_log.read_text().split()) if batch_log.exists() else 0
            seconds, latencies = load_test(port, texts, clients)
        finally:
            server.stop()
        sizes = [int(size) for size in batch_log.read_text().split()[warm_up:]]
    return LoadResult(f"LitServe `{flags or '(its defaults)'}`", backend, seconds, latencies, sum(sizes) / max(len(sizes), 1))


def print_load_results(results: Sequence[LoadResult], texts: int, clients: int, max_wait_ms: float, offline: dict[str, float]) -> None:
    print(f"\nUnder load: {clients} concurrent clients, one text per request, {texts} requests, max wait {max_wait_ms:g} ms")
    print("| server | backend | texts/s | of offline batch throughput | p50 ms | p95 ms | p99 ms | texts per forward pass |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        per_second = texts / result.seconds
        p50, p95, p99 = np.percentile(result.latencies, [50, 95, 99])
        print(
            f"| {result.server} | {result.backend} | {per_second:.0f} | {100 * per_second / offline[OFFLINE_ROW[result.backend]]:.0f}% | "
            f"{p50:.1f} | {p95:.1f} | {p99:.1f} | {result.texts_per_pass:.1f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=EXPORT_DIR)
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per backend; the median counts")
    parser.add_argument("--latency-texts", type=int, default=300, help="single-text requests timed per backend")
    parser.add_argument("--levers", action="store_true", help="also measure each optimisation on its own")
    parser.add_argument("--openvino", action="store_true", help="also measure OpenVINO on model.onnx: fp32, bf16, NNCF int8")
    parser.add_argument("--ctranslate2", action="store_true", help="also measure CTranslate2 (int8, fp32) on the encoder")
    parser.add_argument("--load", action="store_true", help="also load-test `serve` on the fastest backend")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the load test")
    parser.add_argument("--serve-backend", choices=tuple(OFFLINE_ROW), help="`serve --backend` in the load test (default: its auto)")
    parser.add_argument(
        "--serve-batching", nargs="+", type=checked_batching, default=["default", "1x32"], metavar="WORKERSxBATCH",
        help="one load test per value: `default` (serve's own defaults) or WORKERSxBATCH, e.g. 1x32 for `--workers 1 "
        "--max-batch-size 32`, one batch of up to 32 texts at a time (the defaults before 2026-12-05); default: default 1x32",
    )  # fmt: skip
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="`serve --max-wait-ms` in the load test")
    parser.add_argument(
        "--litserve", action="store_true",
        help="with --load: the same load test on LitServe (benchmarks/litserve_app.py), same backend; pip install litserve",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.litserve and not args.load:
        parser.error("--litserve is a load test: add --load")

    splits = read_splits(args.data)
    split = splits.test if args.split == "test" else splits.validation
    texts = split["text"].tolist()
    reference: Classifier = load(args.model, backend="torch")
    labels, tokenizer, rule = reference.labels, reference.tokenizer, reference.thresholds
    raw_texts = texts
    # The forward passes below take tokenizer input directly, so the texts are normalised here once,
    # as `predict` would (the server normalises the raw texts itself).
    texts = normalise_texts(texts, reference.normalise)
    gold = labels_to_multi_hot(split["labels"], labels)

    with tempfile.TemporaryDirectory(prefix="serving-") as scratch:
        backends = {"PyTorch fp32": reference.forward}
        bf16 = bf16_forward(reference.model)
        slowdown = bf16_slowdown(reference.forward, bf16, tokenizer, texts, len(labels))
        if slowdown <= BF16_MAX_SLOWDOWN:
            backends["PyTorch bf16 autocast"] = bf16
        backends |= {
            "ONNX fp32": onnx_forward(args.model / ONNX_FILE),
            "ONNX int8": onnx_forward(args.model / INT8_FILE),
        }
        at_once: dict[str, int] = {}  # rows that run several batches at once, as `predict` does
        if (args.model / OPENVINO_FILE).is_file():
            # What `predict` and `load()` run (OpenVINO's throughput mode), and what `serve
            # --workers 1` runs: one stream, one batch at a time on every thread.
            backends["OpenVINO int8"], at_once["OpenVINO int8"] = openvino_forward(args.model / OPENVINO_FILE, streams=None)
            backends["OpenVINO int8, one stream"], _ = openvino_forward(args.model / OPENVINO_FILE, streams=1)
        if args.openvino:
            calibration = normalise_texts(splits.validation["text"].tolist()[:300], reference.normalise)
            backends.update(openvino_backends(args.model, tokenizer, calibration))
        if args.ctranslate2:
            backends.update(ctranslate2_backends(reference, Path(scratch)))
        if args.levers:
            backends.update(lever_backends(reference, args.model, Path(scratch)))
        for name, forward in backends.items():  # warm up: first calls allocate and pick kernels
            predict_probabilities(forward, tokenizer, texts[:128], len(labels), args.batch_size, batches_at_once=at_once.get(name, 1))

        # Timings on a shared 2-core VM drift by 10% from pass to pass: every backend is timed in
        # each of `--repeats` interleaved passes over the test split, and the median pass counts.
        probabilities_of, seconds_of = {}, {name: [] for name in backends}
        per_second_of: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, forward in backends.items():
                probabilities_of[name], seconds = timed_pass(
                    forward, tokenizer, texts, len(labels), args.batch_size, at_once.get(name, 1)
                )
                seconds_of[name].append(seconds)
        reference_name = next(iter(backends))
        expected, base_time = probabilities_of[reference_name], float(np.median(seconds_of[reference_name]))
        print(f"{len(texts)} {args.split} texts, batch {args.batch_size} (median of {args.repeats} passes), {args.latency_texts} single-text requests")
        for name, count in at_once.items():
            print(f"{name}: {count} batches at once (the runtime's streams)")
        print()
        if "PyTorch bf16 autocast" not in backends:
            print(f"PyTorch bf16 autocast: not timed, {slowdown:.0f}x slower than fp32 on one batch (no bf16 units on this CPU: emulated)\n")
        print(f"| backend | texts/s (batch {args.batch_size}) | speed-up | p50 ms (batch 1) | p95 ms | max abs prob. diff | label agreement | micro-F1 | Jaccard |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, forward in backends.items():
            probabilities, seconds = probabilities_of[name], float(np.median(seconds_of[name]))
            per_second_of[name] = len(texts) / seconds
            p50, p95 = latency_ms(forward, tokenizer, texts[: args.latency_texts], len(labels))
            scores = multilabel_metrics(gold, probabilities, rule, labels)
            agreement = ((probabilities >= rule) == (expected >= rule)).mean()
            print(
                f"| {name} | {len(texts) / seconds:.0f} | {base_time / seconds:.2f}x | {p50:.2f} | {p95:.2f} | "
                f"{np.abs(probabilities - expected).max():.1e} | {100 * agreement:.2f}% | "
                f"{format_score(scores['f1_micro'])} | {format_score(scores['jaccard'])} |",
                flush=True,
            )
        if args.levers:
            print(f"\nBatching order (batch {args.batch_size}, texts/s): file order vs sorted by length")
            for name in ("PyTorch fp32", "ONNX int8"):
                in_order = file_order_seconds(backends[name], tokenizer, texts, len(labels), args.batch_size)
                _, by_length = timed_pass(backends[name], tokenizer, texts, len(labels), args.batch_size)
                print(f"- {name}: {len(texts) / in_order:.0f} in file order, {len(texts) / by_length:.0f} sorted by length")
    if args.load:
        results = [
            serve_under_load(args.model, args.serve_backend or "auto", flags, raw_texts, args.clients, args.max_wait_ms)
            for flags in map(batching_flags, args.serve_batching)
        ]
        if args.litserve:  # the other server library, on the backend `serve` ran
            results += [
                litserve_under_load(args.model, results[0].backend, flags, raw_texts, args.clients, args.max_wait_ms)
                for flags in map(litserve_flags, args.serve_batching)
            ]
        print_load_results(results, len(raw_texts), args.clients, args.max_wait_ms, per_second_of)
    return 0


if __name__ == "__main__":
    sys.exit(main())
