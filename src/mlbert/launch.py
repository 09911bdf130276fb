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


def torchrun_command(script: str, num_processes: int) -> list[str] | None:
    """The command that reruns `script` on `num_processes` local processes, or None to run here."""
    if num_processes == 1 or "LOCAL_RANK" in os.environ:
        return None
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", f"--nproc-per-node={num_processes}", script,
    ]  # fmt: skip


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
