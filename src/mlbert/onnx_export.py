"""ONNX serving files: an fp32 graph with fused transformer ops, and a dynamically quantised int8 one.

    model.onnx       torch.onnx.export (dynamic batch and sequence axes), then onnxruntime's
                     transformer optimizer (fused attention and embedding LayerNorm), with its
                     SkipLayerNormalization and BiasGelu split back into standard ops (see below)
    model.int8.onnx  model.onnx with MatMul/Gemm weights quantised per output channel to int8
                     and activations quantised on the fly (onnxruntime quantize_dynamic); the
                     classifier head and the first layers' FFN output projections stay fp32

Both take the tokenizer's own inputs (input_ids, attention_mask and, for BERT, token_type_ids)
and return `logits` (batch, labels); the label-aware head adds its label segment inside the graph.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
OPSET = 17
# Quantising these ops is where int8 pays; the final classifier (a Gemm/MatMul too) is excluded
# by name below, since its errors land directly on the logits.
QUANTIZED_OPS = ("MatMul", "Gemm", "Attention")
# An FFN output projection reads GELU activations: skewed, with rare large outliers, which one
# per-batch uint8 scale rounds coarsely. In the first layer that error then runs through every
# later one, so keeping the first layers' projections fp32 buys the most agreement per FLOP.
GELU_OPS = ("Gelu", "BiasGelu", "FastGelu")
# onnxruntime's CPU kernels for these two fusions are slower than the plain ops they replace
# (measured with benchmarks/profile_onnx.py; figures in docs/serving.md). They are split back after
# fusing (attention fusion needs them as anchors), and sessions must not re-fuse them at load time.
UNFUSED_AT_LOAD = ("SkipLayerNormFusion", "BiasGeluFusion")


def traceable(model: Any, tokenizer: Any) -> tuple[Any, list[str], tuple[Any, ...]]:
    """`model` as a module that takes the tokenizer's inputs positionally and returns the logits
    alone, its input names, and a sample batch to trace it with (what graph exporters need)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module, names: list[str]):
            super().__init__()
            self.inner, self.names = inner, names

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(self.names, tensors))).logits

    sample = tokenizer(["an example text to trace", "and another"], padding=True, return_tensors="pt")
    names = [name for name in tokenizer.model_input_names if name in sample]
    wrapped = LogitsOnly(model, names).eval()  # in train mode, export would leave dropout on afterwards
    return wrapped, names, tuple(sample[name] for name in names)


def export_onnx(model: Any, tokenizer: Any, path: Path) -> list[str]:
    """Write the fp32 model to `path` with dynamic batch/sequence axes; return its input names."""
    import torch

    wrapped, names, sample = traceable(model, tokenizer)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    with torch.inference_mode():
        torch.onnx.export(
            wrapped,
            sample,
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter's graph is what onnxruntime's fusions recognise
        )
    return names


def optimize_onnx(path: Path, config: Any) -> None:
    """Fuse attention and the embedding LayerNorm in place (onnxruntime.transformers), keeping
    residual LayerNorms and GELUs as standard ops (see UNFUSED_AT_LOAD)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(path),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        opt_level=1,  # ORT's portable level; its CPU-only rewrites happen at session load
    )
    split_slow_fusions(optimized.model)
    optimized.save_model_to_file(str(path))


def split_slow_fusions(model: Any) -> None:
    """Rewrite, in place, each SkipLayerNormalization as (bias) Add + Add + LayerNormalization and
    each BiasGelu as Add + Gelu: the same maths in ops that run faster on CPU."""
    from onnx import helper

    nodes = []
    for node in model.graph.node:
        if node.op_type == "SkipLayerNormalization":
            if any(node.output[1:3]):  # mean / inverse std outputs: only training graphs read them
                raise ValueError(f"{node.name}: SkipLayerNormalization statistics outputs are in use")
            x, skip, gamma, beta, bias = (list(node.input) + ["", ""])[:5]
            if bias:
                nodes.append(helper.make_node("Add", [x, bias], [f"{node.name}_biased"], name=f"{node.name}_bias"))
                x = f"{node.name}_biased"
            residual = node.output[3] if len(node.output) > 3 and node.output[3] else f"{node.name}_residual"
            nodes.append(helper.make_node("Add", [x, skip], [residual], name=f"{node.name}_residual"))
            epsilon = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
            inputs = [residual, gamma] + ([beta] if beta else [])
            norm = helper.make_node("LayerNormalization", inputs, [node.output[0]], name=f"{node.name}_norm")
            norm.attribute.extend([helper.make_attribute("axis", -1), helper.make_attribute("epsilon", epsilon)])
            nodes.append(norm)
        elif node.op_type == "BiasGelu":
            nodes.append(helper.make_node("Add", list(node.input), [f"{node.name}_biased"], name=f"{node.name}_bias"))
            nodes.append(
                helper.make_node("Gelu", [f"{node.name}_biased"], list(node.output), name=f"{node.name}_gelu", domain="com.microsoft")
            )
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def quantize_onnx(
    source: Path, target: Path, per_channel: bool = True, exclude_head: bool = True, fp32_ffn_outputs: int = 0
) -> list[str]:
    """Dynamic int8 quantisation of `source` into `target`: int8 weights, activations quantised
    per batch at run time; no calibration data needed. The head and the FFN output projections
    of the first `fp32_ffn_outputs` layers stay fp32; returns the names of the nodes kept fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source))
    excluded = (_head_nodes(graph) if exclude_head else []) + ffn_output_nodes(graph)[:fp32_ffn_outputs]
    with tempfile.TemporaryDirectory() as scratch:  # quantize_dynamic writes helper files beside its input
        staged = Path(scratch) / source.name
        staged.write_bytes(source.read_bytes())
        quantize_dynamic(
            str(staged),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_exclude=excluded,
            # Fused ops (com.microsoft domain) defeat ONNX shape inference; their outputs are fp32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return excluded


def ffn_output_nodes(model: Any) -> list[str]:
    """The MatMul nodes that read a GELU's output (each layer's FFN output projection), in graph
    order, which for an exported encoder is layer order."""
    gelu_outputs = {output for node in model.graph.node if node.op_type in GELU_OPS for output in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type in ("MatMul", "Gemm") and any(name in gelu_outputs for name in node.input)
    ]


def _head_nodes(model: Any) -> list[str]:
    """The MatMul/Gemm nodes that produce the logits (the classification head), by name."""
    producers = {output: node for node in model.graph.node for output in node.output}
    found, frontier = [], [output.name for output in model.graph.output]
    for _ in range(4):  # logits <- (Squeeze) <- Add <- MatMul: a few steps back at most
        next_frontier = []
        for name in frontier:
            node = producers.get(name)
            if node is None:
                continue
            if node.op_type in ("MatMul", "Gemm"):
                found.append(node.name)
                continue
            next_frontier.extend(node.input)
        frontier = next_frontier
    return found


def onnx_session(path: Path, threads: int | None = None, profile: bool = False) -> Any:
    """An onnxruntime CPU session with full graph optimisation, less the fusions that are slower."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.enable_profiling = profile
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(UNFUSED_AT_LOAD)
    )
