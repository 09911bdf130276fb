"""Where a loaded model runs: `auto` (the first GPU when PyTorch sees one, else the CPU), `cpu`,
`cuda` or `cuda:N`.

Only the PyTorch backend runs on a GPU; the ONNX and OpenVINO backends are CPU runtimes here. So
`auto` means "a GPU if there is one and the backend can use it", and naming a GPU with a CPU-only
backend is an error rather than a silent run on the CPU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import MlbertError


class DeviceError(MlbertError, ValueError):
    """The device asked for is not one this machine has, or not one the backend can run on. (Here,
    not in errors.py, which every stage imports: only the loading stages depend on devices.)"""


AUTO = "auto"
CPU = "cpu"
GPU_BACKENDS = ("torch",)
DEVICE_HELP = "auto (a GPU when PyTorch sees one, else the CPU), cpu, cuda or cuda:N"
_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse_device(text: str) -> str:
    """`text` in its canonical spelling (`cuda` -> `cuda:0`), or a DeviceError naming it."""
    match = _DEVICE.match(text.strip().lower()) if isinstance(text, str) else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise DeviceError(f"unknown device {text!r}; expected {DEVICE_HELP}")
    kind, index = match.groups()
    return f"cuda:{index or 0}" if kind == "cuda" else kind


def resolve_device(requested: str, gpus: int) -> str:
    """The device to load on, given the request and how many GPUs PyTorch sees: `auto` is
    `cuda:0` when there is one, else `cpu`; a GPU that is not there is a DeviceError."""
    return _resolve(parse_device(requested), gpus)


def _resolve(device: str, gpus: int) -> str:
    if device == AUTO:
        return "cuda:0" if gpus else CPU
    if device != CPU:
        index = int(device.split(":")[1])
        if not gpus:
            raise DeviceError(
                f"device {device}: PyTorch sees no CUDA GPU on this machine (a CPU-only build, no driver, or "
                "CUDA_VISIBLE_DEVICES hides them); use device cpu or auto"
            )
        if index >= gpus:
            raise DeviceError(f"device {device}: this machine has {gpus} GPU(s), cuda:0 to cuda:{gpus - 1}")
    return device


def device_for_backend(requested: str, backend: str | None, present: Sequence[str], gpus: int) -> str:
    """Where to load `backend` (None: the caller lets `auto` pick among the `present` backends).
    `auto` falls back to the CPU when the backend cannot use a GPU; a GPU named outright with a
    backend that cannot use it is a DeviceError."""
    asked = parse_device(requested)
    device = _resolve(asked, gpus)
    usable = [backend] if backend else list(present)
    if device == CPU or any(name in GPU_BACKENDS for name in usable):
        return device
    if asked == AUTO:
        return CPU
    if backend:
        raise DeviceError(
            f"backend {backend} runs on the CPU only; device {device} needs backend "
            f"{' or '.join(GPU_BACKENDS)} (or auto), or use device cpu"
        )
    raise DeviceError(
        f"device {device} needs the torch backend, and this folder has none ({', '.join(present)}); use device cpu"
    )


def available_cores() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the machine's)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
