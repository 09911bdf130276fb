"""Seconds per training step of the real model for several `train.freeze_layers` values.

    python benchmarks/train_step.py --freeze 0 2 3
    python ../shared/tools/calibrate.py; python ../shared/tools/calibrate.py --fp32   # print beside it

The model, head and data are the pipeline's (params.yaml, data/tokenized from `dvc repro
tokenize`). Batches of `train.per_device_train_batch_size` come from one length-sorted block of
training texts, as the Trainer's `group_by_length` sampler forms them. Each step is a forward
pass, BCE loss, backward pass, gradient clipping and an AdamW step over the parameters that train,
in fp32. The settings take turns, `--steps` steps each per round, so a host whose speed drifts
slows every setting alike; the table shows each setting's median over `--rounds` rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mlbert.labels import read_label_list
from mlbert.modeling import freeze_bottom_layers, load_classifier_for_training, load_tokenizer, model_source
from mlbert.params import load_params
from mlbert.paths import TOKENIZED_DIR

FEATURES = ("input_ids", "attention_mask", "token_type_ids")


def length_grouped_batches(train: Any, collator: Any, batch_size: int, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` batches spread over one length-sorted block of 50 batches of random training texts
    (the block the Trainer's group_by_length sampler sorts), longest first."""
    import random

    block = random.Random(seed).sample(range(len(train)), min(len(train), 50 * batch_size))
    block.sort(key=lambda i: len(train[i]["input_ids"]), reverse=True)
    batches = [block[start : start + batch_size] for start in range(0, len(block), batch_size)]
    chosen = batches[:: max(1, len(batches) // count)][:count]
    columns = [name for name in (*FEATURES, "labels") if name in train.column_names]
    return [collator([{name: train[i][name] for name in columns} for i in batch]) for batch in chosen]


def training_step(model: Any, optimizer: Any, batch: dict[str, Any]) -> None:
    import torch

    inputs = {name: value for name, value in batch.items() if name != "labels"}
    logits = model(**inputs).logits
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"].float())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--freeze", type=int, nargs="+", default=[0, 2], help="train.freeze_layers values to time")
    parser.add_argument("--data", type=Path, default=TOKENIZED_DIR, help="the tokenize stage's output")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting and round")
    args = parser.parse_args(argv)

    import torch
    from datasets import load_from_disk
    from transformers import DataCollatorWithPadding

    params = load_params()
    source = model_source(params.model)
    tokenizer = load_tokenizer(source, params.tokenize.max_length)
    labels = read_label_list(args.data)
    batch_size = params.train.training_args.get("per_device_train_batch_size", 8)
    batches = length_grouped_batches(
        load_from_disk(str(args.data))["train"], DataCollatorWithPadding(tokenizer), batch_size, args.steps + 1
    )
    runs = {}
    for layers in args.freeze:
        torch.manual_seed(0)
        model = load_classifier_for_training(source, labels, params.model.head, tokenizer).train()
        trainable, total = freeze_bottom_layers(model, layers, source.name)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        training_step(model, optimizer, batches[0])  # warm-up: allocator, optimizer state
        runs[layers] = {"model": model, "optimizer": optimizer, "trainable": trainable, "total": total, "times": []}
    for _ in range(args.rounds):
        for run in runs.values():
            start = time.perf_counter()
            for batch in batches[1:]:
                training_step(run["model"], run["optimizer"], batch)
            run["times"].append((time.perf_counter() - start) / args.steps)

    print(f"{source.name}, head {params.model.head}, batch {batch_size}, {torch.get_num_threads()} threads, fp32; "
          f"median of {args.rounds} interleaved rounds of {args.steps} steps\n")  # fmt: skip
    print("| freeze_layers | parameters that train | s/step | samples/s | vs first |")
    print("|---|---|---|---|---|")
    first = statistics.median(runs[args.freeze[0]]["times"])
    for layers, run in runs.items():
        seconds = statistics.median(run["times"])
        print(
            f"| {layers} | {run['trainable']:,} of {run['total']:,} | {seconds:.3f} | "
            f"{batch_size / seconds:.1f} | {first / seconds:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
