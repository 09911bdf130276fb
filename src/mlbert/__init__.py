"""mlbert: fine-tune BERT-family encoders for multi-label text classification under DVC.

The public API is `load(folder).predict(texts)`. It is imported on first use, so that a stage
importing one submodule (say `mlbert.params`) does not load the serving stack with it: dvc.yaml
declares each stage's imports, and tests/test_dvc_yaml.py derives them from the source.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Classifier", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "load"):
        return getattr(importlib.import_module("mlbert.prediction"), name)
    raise AttributeError(f"module 'mlbert' has no attribute {name!r}")
