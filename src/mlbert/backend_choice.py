"""`--backend auto`: the backend that is fastest on this machine, found by timing, not by a fixed order.

Which runtime wins depends on the CPU more than on the model. OpenVINO's static int8 is 3x PyTorch
fp32 on a CPU with AVX-512 VNNI and slower than PyTorch fp32 on one with AVX2 alone, where
onnxruntime's dynamic int8 is 2x (docs/serving.md). So `auto` times every backend the folder holds
on a few batches of a tweet-length text and loads the fastest; an int8 backend must beat the
fastest exact one (onnx fp32 or torch) by `INT8_MIN_SPEEDUP`, since near a tie exactness wins.

The timing takes a few seconds, so its result is cached per machine and folder: the key is the CPU,
the thread settings, the runtime versions and each model file's size and modification time, so a
re-exported folder or another machine is measured afresh. The cache is a JSON file in
`$MLBERT_CACHE_DIR`, else `$XDG_CACHE_HOME/mlbert`, else `~/.cache/mlbert`; deleting it is safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

EXACT_BACKENDS = ("onnx", "torch")  # within 1e-4 of each other (the export's parity gate)
INT8_MIN_SPEEDUP = 1.1
PROBE_BATCH = 32  # `predict`'s batch size
PROBE_ROUNDS = 3  # timed calls per backend, interleaved across backends, after one warm-up each
# About a normalised tweet's length in tokens: what the backends are timed on.
PROBE_TEXT = "just got home after the longest day at work and honestly i could not be happier to see my dog waiting by the door"
CACHE_FILE = "backend_choice.json"
# The runtimes whose version changes their speed.
RUNTIMES = ("torch", "onnxruntime", "openvino")

Forward = Callable[[dict[str, np.ndarray]], np.ndarray]


class Runner(NamedTuple):
    """One backend, loaded: its forward pass, the torch module (torch backend only), and how many
    forward passes to keep running at once (OpenVINO's streams; 1 for the other runtimes)."""

    forward: Forward
    model: Any = None
    batches_at_once: int = 1


def choose_fastest(texts_per_s: Mapping[str, float], min_int8_speedup: float = INT8_MIN_SPEEDUP) -> str:
    """The backend to load, given each one's measured speed: the fastest, except that an int8
    backend must beat the fastest exact backend by `min_int8_speedup` to be preferred to it."""
    if not texts_per_s:
        raise ValueError("no backend was timed")
    fastest = max(texts_per_s, key=texts_per_s.__getitem__)
    exact = [name for name in texts_per_s if name in EXACT_BACKENDS]
    if fastest in EXACT_BACKENDS or not exact:
        return fastest
    best_exact = max(exact, key=texts_per_s.__getitem__)
    return fastest if texts_per_s[fastest] >= min_int8_speedup * texts_per_s[best_exact] else best_exact


def time_backends(runners: Mapping[str, Runner], tokenizer: Any, rounds: int = PROBE_ROUNDS) -> dict[str, float]:
    """Texts per second of each backend on padded batches of `PROBE_BATCH` copies of `PROBE_TEXT`,
    run as `predict` runs it (`batches_at_once` batches at a time): one warm-up each, then
    `rounds` timings interleaved across backends so that a drift in the machine's speed hits all
    alike; each backend's fastest timing counts."""
    encoded = tokenizer([PROBE_TEXT] * PROBE_BATCH, truncation=True, padding=True, return_tensors="np")
    batch = {name: np.asarray(values, dtype=np.int64) for name, values in encoded.items()}
    widest = max((runner.batches_at_once for runner in runners.values()), default=1)
    with ThreadPoolExecutor(widest, thread_name_prefix="mlbert-probe") as pool:

        def seconds(runner: Runner) -> float:
            start = time.perf_counter()
            if runner.batches_at_once == 1:
                runner.forward(batch)
            else:
                list(pool.map(runner.forward, [batch] * runner.batches_at_once))
            return time.perf_counter() - start

        for runner in runners.values():
            seconds(runner)
        best = {name: float("inf") for name in runners}
        for _ in range(rounds):
            for name, runner in runners.items():
                best[name] = min(best[name], seconds(runner) / runner.batches_at_once)
    return {name: round(PROBE_BATCH / took, 1) for name, took in best.items()}


def cache_dir() -> Path:
    if os.environ.get("MLBERT_CACHE_DIR"):
        return Path(os.environ["MLBERT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlbert"


def cache_key(folder: Path, files: Mapping[str, str], threads: int | None, concurrency: int | None) -> str:
    """What the measured speeds depend on: this CPU, how many of its cores this process may use (a
    taskset or container share, not the machine's count), the thread settings, the runtimes'
    versions, and which model files the folder holds (size and modification time of each)."""
    from importlib.metadata import PackageNotFoundError, version

    from .bf16 import machine_summary
    from .devices import available_cores

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    machine = machine_summary()
    stats = {backend: _file_stamp(folder / name) for backend, name in files.items()}
    described = {
        "folder": str(folder.resolve()),
        "files": stats,
        "cpu": machine["cpu"],
        "cpu_flags": machine["cpu_flags"],
        "cpus": available_cores(),
        "threads": threads,
        "concurrency": concurrency,
        "runtimes": {package: installed(package) for package in RUNTIMES},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cached_choice(key: str) -> dict[str, Any] | None:
    """The record of an earlier measurement under `key`, if one is cached and still names a backend."""
    try:
        record = json.loads((cache_dir() / CACHE_FILE).read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("backend"), str) else None


def remember_choice(key: str, folder: Path, backend: str, texts_per_s: Mapping[str, float]) -> Path | None:
    """Add the measurement to the cache file (written whole, then renamed into place); None, with
    a warning, where the cache cannot be written: the choice still holds for this load."""
    path = cache_dir() / CACHE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            records = json.loads(path.read_text())
            records = records if isinstance(records, dict) else {}
        except (OSError, ValueError):
            records = {}
        records[key] = {
            "backend": backend,
            "texts_per_s": dict(texts_per_s),
            "folder": str(folder.resolve()),
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        partial = path.with_name(f"{path.name}.{os.getpid()}.staging")
        partial.write_text(json.dumps(records, indent=1, sort_keys=True))
        partial.replace(path)
    except OSError as error:
        warnings.warn(f"backend auto: cannot write the cache {path} ({error}); the next load times the backends again", stacklevel=2)
        return None
    return path


def describe(texts_per_s: Mapping[str, float], backend: str, cached: bool) -> str:
    """One line for the terminal: what was timed and what was chosen."""
    speeds = ", ".join(f"{name} {speed:.0f}" for name, speed in sorted(texts_per_s.items(), key=lambda item: -item[1]))
    source = "cached timing" if cached else "timed now"
    return f"backend auto: {backend} ({source}, texts/s at batch {PROBE_BATCH} on this machine: {speeds})"


def auto_backend(
    folder: Path,
    present: Sequence[str],
    files: Mapping[str, str],
    tokenizer: Any,
    build: Callable[[str], Runner],
    threads: int | None,
    concurrency: int | None,
) -> tuple[str, dict[str, Any], dict[str, Runner]]:
    """The backend `auto` loads, the record behind the choice (speeds, whether cached), and what
    `build(backend)` returned for each backend timed (so the winner is not loaded twice)."""
    if len(present) == 1:
        return present[0], {"texts_per_s": {}, "cached": False}, {}
    key = cache_key(folder, {name: files[name] for name in present}, threads, concurrency)
    record = cached_choice(key)
    if record is not None and record["backend"] in present:
        return record["backend"], {"texts_per_s": record.get("texts_per_s", {}), "cached": True}, {}
    built = {name: build(name) for name in present}
    speeds = time_backends(built, tokenizer)
    backend = choose_fastest(speeds)
    remember_choice(key, folder, backend, speeds)
    return backend, {"texts_per_s": speeds, "cached": False}, built
