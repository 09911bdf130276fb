"""`train.bf16: auto`: bf16 autocast where it is faster, decided by timing, not by CPU flags.

On a GPU with bf16 it always pays. On a CPU it depends on more than the flags say: AMX makes it
fast, AVX-512 BF16 alone makes it faster on some chips and twice as slow as fp32 on others, and
without either it is emulated. So `auto` on a CPU times a few training steps of the real model
on a real batch both ways and keeps the faster one (`probe_bf16`). The probe leaves the model's
weights, gradients and the random state exactly as it found them, so a run's result does not
depend on it having run.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

# bf16 must beat fp32 by this factor to be chosen: near a tie, fp32's exactness wins.
BF16_MIN_SPEEDUP = 1.1
PROBE_STEPS = 3  # timed steps per precision, interleaved, after one warm-up step each
# Without bf16 units a CPU emulates it 10-20x slower than fp32 (25 s a step for the packaged model on
# a 2-core AVX2 CPU, so the full probe cost 100 s there). A bf16 step this many times slower than
# fp32 ends the probe: far more than warm-up costs differ by, and bf16 can no longer win.
GIVE_UP_SLOWDOWN = 4.0
# The CPU flags that decide how fast bf16 and int8 run; recorded beside every run's timings.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def gpu_bf16() -> bool | None:
    """On a GPU: whether it does bf16. None on a machine without one (then probe)."""
    import torch

    return torch.cuda.is_bf16_supported() if torch.cuda.is_available() else None


def choose_bf16(fp32_samples_per_s: float, bf16_samples_per_s: float) -> bool:
    """bf16 autocast only when the probe measured it clearly faster than fp32."""
    return bf16_samples_per_s >= BF16_MIN_SPEEDUP * fp32_samples_per_s


def probe_bf16(
    model: Any, batch: dict[str, Any], steps: int = PROBE_STEPS, give_up_slowdown: float = GIVE_UP_SLOWDOWN
) -> dict[str, float]:
    """Training throughput (samples/s) of `model` on `batch` (collated tensors, labels removed)
    in fp32 and under bf16 autocast: forward and backward, steps interleaved so that a drift in
    the machine's speed hits both alike. Weights are not updated; gradients and the RNG state
    are restored.

    A bf16 step more than `give_up_slowdown` times slower than the fp32 step before it ends the
    probe there (`timed_steps` says after how many timed steps; 0: the warm-up alone), since
    bf16 can then no longer win."""
    import torch

    was_training = model.training
    model.train()
    size = next(iter(batch.values())).shape[0]
    elapsed = {False: 0.0, True: 0.0}
    timed = 0
    with torch.random.fork_rng(devices=[]):  # dropout draws here must not shift training's draws
        for step in range(steps + 1):
            took = {}
            for bf16 in (False, True):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(**batch).logits
                logits.float().sum().backward()
                took[bf16] = time.perf_counter() - start
                model.zero_grad(set_to_none=True)
            if step:  # the first step of each warms up kernels and allocator
                elapsed = {bf16: elapsed[bf16] + took[bf16] for bf16 in took}
                timed = step
            if took[True] > give_up_slowdown * took[False]:
                if not timed:  # stopped at the warm-up: its times are all there is
                    elapsed = took
                break
    model.train(was_training)
    counted = max(timed, 1)
    return {
        "fp32_samples_per_s": round(counted * size / elapsed[False], 2),
        "bf16_samples_per_s": round(counted * size / elapsed[True], 2),
        "timed_steps": timed,
    }


def machine_summary() -> dict[str, Any]:
    """What decides this machine's speed, for the run summary: CPU model, the flags that matter,
    threads, GPU."""
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_flags": " ".join(flag for flag in SPEED_FLAGS if flag in flags) or "none of " + ", ".join(SPEED_FLAGS),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def _cpuinfo() -> tuple[str, set[str]]:
    """The CPU's model name and flags from /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", set()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), set(fields.get("flags", "").split())
