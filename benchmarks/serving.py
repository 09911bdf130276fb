"""Serving speed and fidelity of the exported folder: PyTorch fp32, PyTorch bf16 autocast, ONNX fp32
and ONNX int8, side by side in one process on the same texts and the same batches.

    python benchmarks/serving.py                          # models/export on the prepared test split
    python benchmarks/serving.py --levers                 # also: what each optimisation adds
    python benchmarks/serving.py --levers --split validation   # where export settings are chosen

Throughput is texts/s at batch 32 over the whole test split (batches of similar length, as
`predict` makes them); latency is p50/p95 over single texts. Agreement is the share of the
(text, label) decisions, with the exported thresholds, that match PyTorch fp32. `--levers` also
measures file-order batches, the un-fused ONNX graph, onnxruntime's own SkipLayerNorm fusion
and other quantisation settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlbert.data import read_splits
from mlbert.labels import labels_to_multi_hot
from mlbert.metrics import multilabel_metrics
from mlbert.onnx_export import INT8_FILE, ONNX_FILE, export_onnx, quantize_onnx
from mlbert.prediction import (
    Classifier,
    length_sorted_batches,
    load,
    onnx_forward,
    predict_probabilities,
    session_forward,
    torch_forward,
)


def batches_in_file_order(n: int, batch_size: int) -> list[np.ndarray]:
    return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def run_batches(forward, tokenizer, texts, num_labels, batches) -> tuple[np.ndarray, float]:
    """Probabilities for `texts` over the given batches, and the wall time of the forward passes
    including tokenizer padding (tokenization itself is shared and done once, outside)."""
    encoded = tokenizer(list(texts), truncation=True)
    names = list(encoded.keys())
    probabilities = np.zeros((len(texts), num_labels), dtype=np.float32)
    start = time.perf_counter()
    for rows in batches:
        batch = tokenizer.pad({name: [encoded[name][i] for i in rows] for name in names}, return_tensors="np")
        logits = forward({name: np.asarray(batch[name], dtype=np.int64) for name in names})
        probabilities[rows] = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return probabilities, time.perf_counter() - start


def latency_ms(forward, tokenizer, texts, num_labels: int) -> tuple[float, float]:
    """p50 and p95 of single-text predictions, tokenization included (what a request costs)."""
    timings = []
    for text in texts:
        start = time.perf_counter()
        predict_probabilities(forward, tokenizer, [text], num_labels, batch_size=1)
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def bf16_forward(model) -> Callable:
    import torch

    plain = torch_forward(model)

    def forward(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(batch)

    return forward


def plain_onnx_forward(path: Path) -> Callable:
    """An onnxruntime session with every default fusion, as `InferenceSession(path)` gives."""
    import onnxruntime as ort

    return session_forward(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/export"))
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per backend; the median counts")
    parser.add_argument("--latency-texts", type=int, default=300, help="single-text requests timed per backend")
    parser.add_argument("--levers", action="store_true", help="also measure each optimisation on its own")
    args = parser.parse_args(argv)

    splits = read_splits(args.data)
    split = splits.test if args.split == "test" else splits.validation
    texts = split["text"].tolist()
    reference: Classifier = load(args.model, backend="torch")
    labels, tokenizer, rule = reference.labels, reference.tokenizer, reference.thresholds
    gold = labels_to_multi_hot(split["labels"], labels)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
    sorted_batches = length_sorted_batches(lengths, args.batch_size)  # what `predict` does

    backends = {
        "PyTorch fp32": reference.forward,
        "PyTorch bf16 autocast": bf16_forward(reference.model),
        "ONNX fp32": onnx_forward(args.model / ONNX_FILE),
        "ONNX int8": onnx_forward(args.model / INT8_FILE),
    }
    scratch = Path(tempfile.mkdtemp(prefix="serving-"))
    if args.levers:
        export_onnx(reference.model, tokenizer, scratch / "unfused.onnx")
        backends["ONNX fp32, not fused"] = onnx_forward(scratch / "unfused.onnx")
        backends["ONNX int8, session fuses SkipLayerNorm back"] = plain_onnx_forward(args.model / INT8_FILE)
        for name, kwargs in {
            "ONNX int8, every FFN output quantised": {"fp32_ffn_outputs": 0},
            "ONNX int8, 2 FFN outputs fp32": {"fp32_ffn_outputs": 2},
            "ONNX int8, per-tensor": {"per_channel": False, "fp32_ffn_outputs": 0},
            "ONNX int8, head quantised too": {"exclude_head": False, "fp32_ffn_outputs": 0},
        }.items():
            path = scratch / (name.replace(" ", "_").replace(",", "") + ".onnx")
            quantize_onnx(args.model / ONNX_FILE, path, **kwargs)
            backends[name] = onnx_forward(path)

    for forward in backends.values():  # warm up: first calls allocate and pick kernels
        run_batches(forward, tokenizer, texts[:64], len(labels), batches_in_file_order(64, args.batch_size))

    # Timings on a shared 2-core VM drift by 10% from pass to pass: every backend is timed in
    # each of `--repeats` interleaved passes over the test split, and the median pass counts.
    probabilities_of, seconds_of = {}, {name: [] for name in backends}
    for _ in range(args.repeats):
        for name, forward in backends.items():
            probabilities_of[name], seconds = run_batches(forward, tokenizer, texts, len(labels), sorted_batches)
            seconds_of[name].append(seconds)
    reference_name = next(iter(backends))
    expected, base_time = probabilities_of[reference_name], float(np.median(seconds_of[reference_name]))
    print(f"{len(texts)} {args.split} texts, batch {args.batch_size} (median of {args.repeats} passes), {args.latency_texts} single-text requests\n")
    print("| backend | texts/s (batch 32) | speed-up | p50 ms (batch 1) | p95 ms | max abs prob. diff | label agreement | micro-F1 | Jaccard |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, forward in backends.items():
        probabilities, seconds = probabilities_of[name], float(np.median(seconds_of[name]))
        p50, p95 = latency_ms(forward, tokenizer, texts[: args.latency_texts], len(labels))
        scores = multilabel_metrics(gold, probabilities, rule, labels)
        agreement = ((probabilities >= rule) == (expected >= rule)).mean()
        print(
            f"| {name} | {len(texts) / seconds:.0f} | {base_time / seconds:.2f}x | {p50:.2f} | {p95:.2f} | "
            f"{np.abs(probabilities - expected).max():.1e} | {100 * agreement:.2f}% | "
            f"{scores['f1_micro']:.4f} | {scores['jaccard']:.4f} |",
            flush=True,
        )
    if args.levers:
        print("\nBatching order (batch 32, texts/s): file order vs sorted by length")
        for name in ("PyTorch fp32", "ONNX int8"):
            _, in_order = run_batches(backends[name], tokenizer, texts, len(labels), batches_in_file_order(len(texts), args.batch_size))
            _, by_length = run_batches(backends[name], tokenizer, texts, len(labels), sorted_batches)
            print(f"- {name}: {len(texts) / in_order:.0f} in file order, {len(texts) / by_length:.0f} sorted by length")
    return 0


if __name__ == "__main__":
    sys.exit(main())
