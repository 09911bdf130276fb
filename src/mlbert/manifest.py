"""manifest.json: what an exported folder holds, so that its files are known to belong together.

Export writes, for every file, its size and SHA-256, plus the labels, the params the model was
made with and its validation and test scores. `load()` checks the files it is about to use against it: a replaced
`model.safetensors` (which would leave the ONNX backends giving the old model's answers), a
truncated graph or a missing `thresholds.json` fail with the file named, instead of serving a
mix of two models or silently falling back to 0.5.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ModelFolderError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(
    folder: Path, labels: list[str], params: dict[str, Any], metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Describe every file now in `folder` (but the manifest itself) and write manifest.json, with
    the model's scores per split when given (what `serve`'s /metadata reports)."""
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": file_digest(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_NAME
    }
    manifest = {"version": MANIFEST_VERSION, "labels": labels, "params": params, "files": files}
    if metrics is not None:
        manifest["metrics"] = metrics
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None for a folder that has none (a trained, not exported, model)."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["files"].items()
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelFolderError(f"{path} is damaged ({error}); export the model again") from error
    return manifest


def check_files(folder: Path, manifest: dict[str, Any], names: Iterable[str]) -> None:
    """Raise ModelFolderError unless each of `names` is in `folder` as the manifest describes it."""
    listed = manifest["files"]
    for name in names:
        path = folder / name
        expected = listed.get(name)
        if expected is None:
            continue  # not part of this export (e.g. no ONNX graph was written)
        if not path.is_file():
            raise ModelFolderError(f"{path} is missing; {MANIFEST_NAME} lists it as part of this model")
        if path.stat().st_size != expected["bytes"] or file_digest(path) != expected["sha256"]:
            raise ModelFolderError(
                f"{path} is not the file this model was exported with (its size or SHA-256 differs from "
                f"{MANIFEST_NAME}); it was changed or damaged after export: export the model again"
            )
