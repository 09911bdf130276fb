"""Running the train stage on several processes through torchrun.

    launch.num_processes: 1   ->  python stages/train.py                (one plain process)
    launch.num_processes: 4   ->  torchrun --standalone --nproc-per-node 4 stages/train.py

Multi-node runs start the script with torchrun (or srun) on every node themselves; a script
that already runs under a launcher (LOCAL_RANK is set) is never launched again.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .errors import ParamsError


def torchrun_command(script: str, num_processes: int) -> list[str] | None:
    """The command that reruns `script` on `num_processes` local processes, or None to run here."""
    if num_processes == 1 or "LOCAL_RANK" in os.environ:
        return None
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", f"--nproc-per-node={num_processes}", script,
    ]  # fmt: skip


def local_processes(num_processes: int) -> tuple[int, str]:
    """How many training processes this machine runs, and the setting that says so: torchrun's
    --nproc-per-node for a worker it started, else `launch.num_processes`."""
    if "LOCAL_WORLD_SIZE" in os.environ:
        return int(os.environ["LOCAL_WORLD_SIZE"]), "torchrun --nproc-per-node"
    return num_processes, "launch.num_processes"


def check_one_gpu_each(processes: int, setting: str, gpus: int) -> None:
    """On a GPU machine each local process trains on a GPU of its own (local rank i on cuda:i), so
    more processes than GPUs would fail later, in the workers, with a bare CUDA error. `gpus` 0:
    a CPU machine, where any number of processes train together (gloo)."""
    if gpus and processes > gpus:
        raise ParamsError(
            f"{setting} is {processes}, but this machine has {gpus} GPU(s) and each process needs its own: "
            f"use at most {gpus}, or hide the GPUs (CUDA_VISIBLE_DEVICES=) to train on CPU processes"
        )


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_launcher(command: list[str], grace_s: float = 30.0) -> int:
    """Run the torchrun `command` and return its exit code. If this process is interrupted
    (Ctrl-C, or SIGTERM turned into SystemExit), the launcher gets SIGTERM, which it passes on to
    its workers, and `grace_s` seconds to end before it is killed."""
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except BaseException:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
