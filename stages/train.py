"""train: fine-tune the encoder with a multi-label head using the Hugging Face Trainer.

Evaluates on validation each epoch and keeps the best epoch by `train.select_epoch_by`, or, with
`train.average_top_epochs: k`, the weight average of the k best epochs. Checkpoints go to
checkpoints/ (persistent, not cached): rerunning an interrupted `dvc repro` resumes from the last
whole one. Outputs: models/trained (weights, config with label maps, tokenizer,
training_params.json), dvclive/ (curves and the run summary).

    python stages/train.py                                   # what `dvc repro` runs
    launch.num_processes: 2 in params.yaml                   # the same, data-parallel, via torchrun
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host:29500 stages/train.py
"""

import os
import sys
from contextlib import nullcontext

from mlbert.checkpoints import exclusive_training
from mlbert.fine_tune import fine_tune
from mlbert.launch import check_one_gpu_each, local_processes, run_launcher, torchrun_command, visible_gpus
from mlbert.params import load_params
from mlbert.paths import TRAIN_LOCK_PATH
from mlbert.stage import run_stage


def main() -> str | None:
    params = load_params()
    check_one_gpu_each(*local_processes(params.launch.num_processes), visible_gpus())
    # One training per folder. Workers under a launcher share their launcher's run (the process
    # that started torchrun holds the lock for them).
    lock = nullcontext() if "LOCAL_RANK" in os.environ else exclusive_training(TRAIN_LOCK_PATH)
    with lock:
        command = torchrun_command(sys.argv[0], params.launch.num_processes)
        if command is None:
            return fine_tune(params)
        print(f"train: {' '.join(command)}")
        code = run_launcher(command)  # each worker prints and writes as fine_tune() says
    sys.exit(code)


if __name__ == "__main__":
    run_stage("train", main)
