"""Label sets: parsing label cells, checking them against the label list, multi-hot encoding."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LabelError
from .paths import LABELS_NAME

LIST_SEPARATOR = ";"
_TRUE = {"1", "1.0", "true"}
_FALSE = {"0", "0.0", "false"}


def parse_indicator(value: Any) -> bool:
    """Read one 0/1 label cell (int, bool, float or its text form); raise LabelError otherwise."""
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LabelError(f"expected 0 or 1, got {value!r}")


def parse_label_list(value: Any) -> list[str]:
    """Read one cell that holds label names: a list, a JSON list, or a `;`-separated string.

    An empty cell means "no label" (a valid multi-label example).
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        names = [str(v) for v in value]
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise LabelError(f"looks like a JSON list but does not parse: {value!r}") from error
            if not isinstance(parsed, list):
                raise LabelError(f"expected a list of label names, got {value!r}")
            names = [str(v) for v in parsed]
        else:
            names = text.split(LIST_SEPARATOR)
    else:
        raise LabelError(f"expected a list of label names or a ';'-separated string, got {value!r}")
    names = [name.strip() for name in names]
    return sorted({name for name in names if name}, key=names.index)


def collect_label_names(label_lists: Iterable[Sequence[str]]) -> list[str]:
    """The sorted set of every label name used: the label order when the data does not give one."""
    return sorted({name for labels in label_lists for name in labels})


def read_label_list(folder: str | Path) -> list[str]:
    """The ordered label list that prepare wrote into `folder` (and tokenize copied along)."""
    return json.loads((Path(folder) / LABELS_NAME).read_text(encoding="utf-8"))


def config_labels(config: Any) -> list[str]:
    """The ordered label list of a model config (`id2label`), as a list of names."""
    id2label = {int(key): name for key, name in config.id2label.items()}
    return [id2label[i] for i in range(len(id2label))]


def labels_to_multi_hot(label_lists: Sequence[Sequence[str]], label_names: Sequence[str]) -> np.ndarray:
    """Encode each example's label names as a float32 0/1 row in `label_names` order."""
    index = {name: i for i, name in enumerate(label_names)}
    encoded = np.zeros((len(label_lists), len(label_names)), dtype=np.float32)
    for row, labels in enumerate(label_lists):
        for name in labels:
            if name not in index:
                raise LabelError(f"row {row}: unknown label {name!r} (known: {', '.join(label_names)})")
            encoded[row, index[name]] = 1.0
    return encoded
