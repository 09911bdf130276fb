"""Checkpoints of an interrupted run, and the average of the best epochs' weights.

A run is resumed only from its own checkpoints: a fingerprint of everything that decides what
training produces (params, encoded data, the package's code and the library versions) marks the
folder, and a folder with another fingerprint is discarded instead of mixed into this run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BusyError

FINGERPRINT_FILE = "run_fingerprint.json"
PACKAGE_DIR = Path(__file__).resolve().parent
FINGERPRINTED_LIBRARIES = ("torch", "transformers", "accelerate", "datasets")


def run_fingerprint(payload: dict[str, Any], data_dir: Path) -> str:
    """A hash of everything that decides what training produces: the params in `payload`, the
    encoded data, this package's source and the versions of the libraries that train."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    libraries = {name: installed(name) for name in FINGERPRINTED_LIBRARIES}
    digest = hashlib.sha256(json.dumps([payload, libraries], sort_keys=True, default=str).encode())
    for root in (data_dir, PACKAGE_DIR):
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix != ".pyc"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_checkpoint_dir(checkpoint_dir: Path, fingerprint: str) -> str | None:
    """Return the checkpoint to resume from, if `checkpoint_dir` holds one from this same run.

    Checkpoints of a run with other params or data are removed: resuming from them would mix
    two experiments.
    """
    marker = checkpoint_dir / FINGERPRINT_FILE
    if checkpoint_dir.is_dir():
        if _recorded_fingerprint(marker) == fingerprint:
            return last_complete_checkpoint(checkpoint_dir)
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    return None


def _recorded_fingerprint(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: not provably this run


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest `checkpoint-<step>` folder that is whole; damaged ones are removed, so the run
    falls back to the one before.

    The Trainer writes a checkpoint in place and its `trainer_state.json` last, so a process
    killed while saving leaves a folder without it, or with it cut short; a disk that filled up
    can leave the weights cut short. Neither may be resumed from: it would crash every later run.
    """
    steps = sorted(
        (int(path.name.split("-")[1]), path)
        for path in checkpoint_dir.glob("checkpoint-*")
        if path.is_dir() and path.name.split("-")[1].isdigit()
    )
    for _, path in reversed(steps):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        print(f"train: not resuming from {path}: {problem}; removed")
        shutil.rmtree(path)
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why the checkpoint in `folder` cannot be resumed from, or None if it is whole: its
    trainer_state.json must parse and its weights' header must cover the whole file."""
    from safetensors import SafetensorError, safe_open

    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except OSError:
        return "no trainer_state.json"
    except ValueError as error:
        return f"trainer_state.json is not valid JSON ({error})"
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return "trainer_state.json has no global_step"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return "no model.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as error:
        return f"model.safetensors is damaged ({error})"
    return None


def top_epochs(state: Any, metric: str, count: int) -> list[dict[str, Any]]:
    """The evaluation log entries of the `count` best epochs by validation `metric`, best first
    (an earlier epoch wins a tie)."""
    evaluations = [entry for entry in state.log_history if f"eval_{metric}" in entry]
    return sorted(evaluations, key=lambda entry: (-entry[f"eval_{metric}"], entry["step"]))[:count]


def checkpoint_folders(entries: list[dict[str, Any]], checkpoint_dir: Path) -> list[Path]:
    """The checkpoint the Trainer saved at each entry's step; all must still be there."""
    folders = [Path(checkpoint_dir) / f"checkpoint-{entry['step']}" for entry in entries]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise FileNotFoundError(f"checkpoints to average are gone: {', '.join(missing)}")
    return folders


def average_weights(state_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of several state dicts of one architecture (float tensors, averaged
    in float32 and cast back); integer buffers such as position ids come from the first."""
    first = state_dicts[0]
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(state[name].float() for state in state_dicts)
            averaged[name] = (total / len(state_dicts)).to(tensor.dtype)
        else:
            averaged[name] = tensor
    return averaged


def load_averaged_checkpoints(model: Any, folders: list[Path]) -> None:
    """Put the average of the weights saved in `folders` (model.safetensors) into `model`."""
    from safetensors.torch import load_file

    averaged = average_weights([load_file(str(folder / "model.safetensors")) for folder in folders])
    result = model.load_state_dict(averaged, strict=False)
    if result.unexpected_keys:
        raise RuntimeError(f"checkpoint weights do not fit the model: {result.unexpected_keys[:5]}")


def best_epoch(state: Any, metric: str) -> float | None:
    """The epoch whose evaluation the Trainer kept as best by `metric`."""
    best = state.best_metric
    for entry in state.log_history:
        if entry.get(f"eval_{metric}") == best:
            return entry.get("epoch")
    return None


@contextmanager
def exclusive_training(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` for the block, or fail at once with BusyError.

    `dvc repro` killed by a signal can leave its training process running; a second `dvc repro`
    must not start another training beside it in the same checkpoints/ and staging folders.
    The kernel drops the lock when its holder dies, however it dies.
    """
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BusyError(
                f"another training (pid {holder}) is running in this folder and holds {lock_path}: "
                f"wait for it to finish, or stop it (kill {holder}) and run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock
