"""Where an exported ONNX graph spends its time: onnxruntime's profiler, summed per operator type.

    python benchmarks/profile_onnx.py models/export/model.int8.onnx
    python benchmarks/profile_onnx.py models/export/model.onnx --texts 640 --threads 2

Runs the first `--texts` test tweets in length-sorted batches of 32 (as `predict` does) and prints
each operator type's share of the kernel time.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from mlbert.data import read_splits
from mlbert.onnx_export import onnx_session
from mlbert.paths import PREPARED_DIR
from mlbert.prediction import predict_probabilities, session_forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("graph", type=Path)
    parser.add_argument("--data", type=Path, default=PREPARED_DIR)
    parser.add_argument("--texts", type=int, default=640)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.graph.parent)
    texts = read_splits(args.data).test["text"].tolist()[: args.texts]
    session = onnx_session(args.graph, args.threads, profile=True)  # as `predict` loads it
    num_labels = session.get_outputs()[0].shape[-1]
    predict_probabilities(session_forward(session), tokenizer, texts, num_labels, batch_size=32)
    trace = Path(session.end_profiling())
    per_op: collections.Counter = collections.Counter()
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    trace.unlink()
    total = sum(per_op.values())
    print(f"{args.graph}: {len(texts)} texts, kernel time {total / 1e6:.2f} s\n")
    print("| operator | ms | share |")
    print("|---|---|---|")
    for op, micros in per_op.most_common(12):
        print(f"| {op} | {micros / 1e3:.0f} | {100 * micros / total:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
