"""The OpenVINO serving file: the model statically quantised to int8 with NNCF.

    openvino_model.xml / .bin   the fine-tuned model converted from PyTorch by OpenVINO (its SDPA
                                attention becomes OpenVINO's fused attention), then NNCF post-training
                                quantisation (transformer preset, SmoothQuant) calibrated on
                                validation texts; inputs and output named as in model.onnx

The file names are the ones Optimum Intel's `OVModelFor*` classes look for in a folder. It is
compiled with fp32 as the precision of whatever stays unquantised, so that it answers alike on
CPUs with and without bf16 units (measured in docs/serving.md: no slower than the bf16 default).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_export import traceable

OPENVINO_FILE = "openvino_model.xml"
OPENVINO_WEIGHTS = "openvino_model.bin"
# NNCF's own default subset size: enough texts for stable activation ranges; more cost export time.
CALIBRATION_TEXTS = 300
COMPILE_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


def write_openvino_int8(model: Any, tokenizer: Any, calibration_texts: Sequence[str], out_dir: Path) -> None:
    """Convert `model` (eval mode, as `load_torch_model` returns it) to OpenVINO with dynamic batch
    and sequence axes, quantise it on `calibration_texts` (already normalised), and save it."""
    import nncf
    import openvino as ov
    import torch

    if not calibration_texts:
        raise ValueError("OpenVINO int8 quantisation needs at least one calibration text")
    wrapped, names, sample = traceable(model, tokenizer)
    with torch.inference_mode():
        converted = ov.convert_model(
            wrapped, example_input=sample, input=[(ov.PartialShape([-1, -1]), ov.Type.i64)] * len(names)
        )
    for port, name in zip(converted.inputs, names):
        port.get_tensor().set_names({name})
    converted.outputs[0].get_tensor().set_names({"logits"})
    encoded = tokenizer(list(calibration_texts[:CALIBRATION_TEXTS]), truncation=True)
    samples = [{name: np.asarray([encoded[name][row]], dtype=np.int64) for name in names} for row in range(len(encoded["input_ids"]))]
    quantized = nncf.quantize(
        converted, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples)
    )
    ov.save_model(quantized, str(out_dir / OPENVINO_FILE))  # writes the .bin beside it


def openvino_forward(path: Path, threads: int | None = None, streams: int | None = 1) -> tuple[Any, int]:
    """A forward pass (padded numpy inputs by name -> logits) on the compiled OpenVINO model, and
    how many calls to run at once to keep it busy; safe to call from that many threads (each
    thread gets its own inference request).

    `streams`: how many batches the model runs at the same time, each on its share of the threads;
    None: OpenVINO's throughput mode, which picks the number for this CPU (two on a 2-core one,
    where it labels a long list 12-14% faster than one stream with both threads; docs/serving.md).
    One stream gives one batch every thread: the lowest latency for a single call.

    `threads`: with `streams` named, the threads of each stream (OpenVINO counts all streams'
    threads together, and given fewer threads than streams it falls back to one stream: two
    workers of one thread each would take turns on one core); in throughput mode, a cap on all
    of them. None: every core this process may use."""
    import threading

    import openvino as ov

    from .devices import available_cores

    hint = {"PERFORMANCE_HINT": "THROUGHPUT"} if streams is None else {"NUM_STREAMS": streams}
    config: dict[str, Any] = {**COMPILE_CONFIG, **hint}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads if streams is None else min(threads * streams, available_cores())
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    # OpenVINO's Python binding sets up its numpy bridge (pybind11's npy_api) on first use, once
    # per process. Two forward threads doing that first use at once were seen to deadlock inside
    # it (once, on a heavily loaded 2-core machine; the stacks of both ended in that set-up), so
    # do it here, on the loading thread, before any forward thread exists.
    np.asarray(ov.Tensor(np.zeros((1, 1), dtype=np.int64)).data)
    names = [port.get_any_name() for port in compiled.inputs]
    output = compiled.outputs[0]
    local = threading.local()

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        # The result is a view of the request's output buffer, which the next call overwrites.
        return np.array(local.request.infer({name: batch[name] for name in names})[output])

    return forward, max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
