"""Atomic outputs: a stage leaves either its old outputs or its complete new ones, never a half.

Each output is written to a staging sibling (`.<name>.<random>.staging`, ignored by git and DVC)
and moved onto its target only when all the stage's work has succeeded. A stage with several
outputs publishes them together (`publish_together`): the moves happen one after the other with
SIGINT and SIGTERM held back, so a signal lands before the first move or after the last. On any
error, or a signal (see `stage.py`, which turns SIGTERM into SystemExit), the staging is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGING_SUFFIX = ".staging"
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class StagedOutputs:
    """Staging paths handed out for a set of targets; `publish_together` moves them in."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []

    def dir(self, target: str | Path) -> Path:
        """An empty staging folder that will replace the folder `target`."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent))
        self.staged.append((staging, target))
        return staging

    def file(self, target: str | Path) -> Path:
        """A staging file path that will replace the file `target`."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=STAGING_SUFFIX, dir=target.parent)
        os.close(handle)
        self.staged.append((Path(name), target))
        return Path(name)

    def json(self, target: str | Path, payload: Any) -> None:
        """Stage `payload` as indented JSON for `target`."""
        self.file(target).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def discard(self) -> None:
        for staging, _ in self.staged:
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)


@contextmanager
def publish_together() -> Iterator[StagedOutputs]:
    """Yield a `StagedOutputs`; when the block succeeds, move every staged output onto its target."""
    outputs = StagedOutputs()
    try:
        yield outputs
    except BaseException:
        outputs.discard()
        raise
    with signals_held():
        for staging, target in outputs.staged:
            replace_path(staging, target)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `path`, on error it is removed."""
    with publish_together() as outputs:
        yield outputs.dir(path)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a staging path beside `path`; on success it is renamed onto `path`."""
    with publish_together() as outputs:
        yield outputs.file(path)


def write_json(path: str | Path, payload: Any) -> None:
    """Write `payload` as indented JSON, atomically."""
    with publish_together() as outputs:
        outputs.json(path, payload)


def replace_path(staging: Path, path: Path) -> None:
    """Move the finished `staging` onto `path`. A folder already at `path` is first renamed aside
    and removed after the move, so `path` is never missing while a good copy exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=STAGING_SUFFIX, dir=path.parent))
        os.replace(path, retired / path.name)
        os.replace(staging, path)
        shutil.rmtree(retired, ignore_errors=True)
        return
    os.replace(staging, path)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the block (main thread only); they arrive after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
