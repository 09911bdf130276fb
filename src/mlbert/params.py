"""The pipeline's parameters: one frozen dataclass per `params.yaml` group, validated on load.

Every stage calls `load_params()` once and reads its own group. Validation happens for the whole
file, so a typo in `train:` is reported even by `prepare`, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"

# The packaged copy of this Hub model is used when the package is installed (see modeling.py).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

SOURCES = ("auto", "semeval", "hub", "files")
HEADS = ("cls", "label_aware")
THRESHOLD_OBJECTIVES = ("jaccard", "f1_micro", "f1_macro", "score")
# Validation scores (at the 0.5 threshold) that can pick the epoch kept; "score" is the mean of
# the other three, the headline numbers.
EPOCH_SELECTION_METRICS = ("score", "jaccard", "f1_micro", "f1_macro")
BF16_CHOICES = ("auto", True, False)

# TrainingArguments that the pipeline sets itself: evaluation and checkpointing per epoch, best
# epoch by `train.select_epoch_by`, logging through dvclive. Letting params override them would break
# resuming, caching or the metrics contract.
PIPELINE_OWNED_TRAINING_ARGS = frozenset(
    {
        "output_dir",
        "eval_strategy",
        "save_strategy",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "report_to",
        "resume_from_checkpoint",
        "do_train",
        "do_eval",
        "do_predict",
        "bf16",
        "fp16",
        "push_to_hub",
    }
)

# Lower bounds for the TrainingArguments a user is most likely to get wrong: (minimum, inclusive).
TRAINING_ARG_BOUNDS: dict[str, tuple[float, bool]] = {
    "learning_rate": (0.0, False),
    "per_device_train_batch_size": (1, True),
    "per_device_eval_batch_size": (1, True),
    "gradient_accumulation_steps": (1, True),
    "num_train_epochs": (0.0, False),
    "weight_decay": (0.0, True),
    "warmup_steps": (0.0, True),
    "max_grad_norm": (0.0, True),
    "logging_steps": (0.0, False),
    "seed": (0, True),
}


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where `3e-05` (what `dvc exp run -S lr=3e-5` writes) is a
    string; this loader reads YAML 1.2 floats, with or without a dot."""


_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class ParamsError(ValueError):
    """A parameter is unknown, has the wrong type or is out of range. The message names the key."""


def _choices(*values: Any) -> dict:
    return {"choices": values}


def _at_least(minimum: float, inclusive: bool = True) -> dict:
    return {"min": minimum, "inclusive": inclusive}


@dataclass(frozen=True)
class ModelParams:
    """`model:` - which pretrained encoder to fine-tune (read by tokenize, train and export)."""

    name: str = DEFAULT_MODEL
    # Both off unless asked for: remote code runs arbitrary Python from the model's repo, and
    # pickled weights (pytorch_model.bin) can execute code when loaded.
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    # cls: one linear layer on the [CLS] state (a standard AutoModelForSequenceClassification).
    # label_aware: the label names go in front of the text as a first segment and each label is
    # scored from its own tokens' states (SpanEmo, Alhuzali & Ananiadou, EACL 2021).
    head: str = field(default="cls", metadata=_choices(*HEADS))


@dataclass(frozen=True)
class PrepareParams:
    """`prepare:` - where the labelled texts come from and how they are split."""

    source: str = field(default="auto", metadata=_choices(*SOURCES))
    dir: str = "data/raw"
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    id_column: str | None = None
    label_columns: list[str] | None = None
    label_column: str | None = None
    labels: list[str] | None = None
    validation_fraction: float = field(default=0.1, metadata={"min": 0.0, "max": 0.5, "inclusive": False})
    test_fraction: float = field(default=0.2, metadata={"min": 0.0, "max": 0.5, "inclusive": False})
    max_train_samples: int | None = field(default=None, metadata=_at_least(1))
    max_eval_samples: int | None = field(default=None, metadata=_at_least(1))
    seed: int = field(default=42, metadata=_at_least(0))

    def __post_init__(self) -> None:
        if self.source != "files":
            return
        if not self.train_file:
            raise ParamsError("prepare.train_file is required when prepare.source is 'files'")
        if (self.label_columns is None) == (self.label_column is None):
            raise ParamsError(
                "prepare.source is 'files': set exactly one of prepare.label_columns "
                "(a list of 0/1 columns) or prepare.label_column (one column of label names)"
            )
        if self.label_columns is not None and not self.label_columns:
            raise ParamsError("prepare.label_columns must name at least one column")


@dataclass(frozen=True)
class TokenizeParams:
    """`tokenize:` - how texts become token ids."""

    max_length: int = field(default=128, metadata=_at_least(2))


@dataclass(frozen=True)
class TrainParams:
    """`train:` - the loss options and `bf16`, plus any Hugging Face `TrainingArguments` field,
    passed through as `training_args`."""

    bf16: str | bool = field(default="auto", metadata=_choices(*BF16_CHOICES))
    # Weight each label's positive examples by its negatives/positives ratio in train, capped.
    pos_weight: bool = False
    pos_weight_cap: float = field(default=10.0, metadata=_at_least(1.0))
    # Share of SpanEmo's label-correlation loss in the total loss (the rest is BCE); 0 turns it off.
    label_correlation_weight: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    # The validation metric (at threshold 0.5) whose best epoch is kept as the trained model.
    select_epoch_by: str = field(default="score", metadata=_choices(*EPOCH_SELECTION_METRICS))
    # The trained model is the weight average of this many best epochs by `select_epoch_by`
    # (1: the best epoch alone).
    average_top_epochs: int = field(default=1, metadata=_at_least(1))
    training_args: dict[str, Any] = field(default_factory=dict)


# train: keys that the pipeline reads itself; every other key goes to TrainingArguments.
PIPELINE_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainParams) if f.name != "training_args")


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate:` - how probabilities become labels, and how fast they are computed."""

    # "tuned": fitted on the validation split (below); a number in (0, 1): one fixed threshold.
    threshold: str | float = "tuned"
    objective: str = field(default="jaccard", metadata=_choices(*THRESHOLD_OBJECTIVES))
    per_label: bool = True  # also fit one threshold per label ...
    shrinkage: float = field(default=20.0, metadata=_at_least(0.0))  # ... pulled toward the global one
    batch_size: int = field(default=64, metadata=_at_least(1))

    def __post_init__(self) -> None:
        if self.threshold == "tuned":
            return
        if isinstance(self.threshold, str) or not 0.0 < self.threshold < 1.0:
            raise ParamsError(f"evaluate.threshold must be 'tuned' or a number in (0, 1), got {self.threshold!r}")


@dataclass(frozen=True)
class ExportParams:
    """`export:` - which serving files the export stage writes, and how exact ONNX must be."""

    onnx: bool = True  # model.onnx: fp32 graph with fused transformer ops
    int8: bool = True  # model.int8.onnx: dynamically quantised (needs onnx: true)
    # The FFN output projections of this many leading layers stay fp32 in the int8 graph.
    int8_fp32_ffn_outputs: int = field(default=1, metadata=_at_least(0))
    # Largest allowed |p_onnx - p_torch| on the test split; a bigger one fails the stage.
    parity_tolerance: float = field(default=1e-4, metadata={"min": 0.0, "inclusive": False})

    def __post_init__(self) -> None:
        if self.int8 and not self.onnx:
            raise ParamsError("export.int8 needs export.onnx: true (the int8 model is quantised from model.onnx)")


@dataclass(frozen=True)
class LaunchParams:
    """`launch:` - how many processes train runs on (torchrun data parallelism when > 1)."""

    num_processes: int = field(default=1, metadata=_at_least(1))


@dataclass(frozen=True)
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    prepare: PrepareParams = field(default_factory=PrepareParams)
    tokenize: TokenizeParams = field(default_factory=TokenizeParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    export: ExportParams = field(default_factory=ExportParams)
    launch: LaunchParams = field(default_factory=LaunchParams)


_GROUP_CLASSES = {
    "model": ModelParams,
    "prepare": PrepareParams,
    "tokenize": TokenizeParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "export": ExportParams,
    "launch": LaunchParams,
}


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate `params.yaml`; raise ParamsError naming the first bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the repository root")
    with path.open(encoding="utf-8") as handle:
        try:
            raw = yaml.load(handle, Loader=_ParamsLoader) or {}
        except yaml.YAMLError as error:
            raise ParamsError(f"{path} is not valid YAML: {error}") from error
    return params_from_dict(raw)


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Validate a params mapping shaped like `params.yaml`."""
    if not isinstance(raw, dict):
        raise ParamsError("params must be a mapping of groups (model, prepare, tokenize, train, evaluate, export, launch)")
    _reject_unknown(raw, _GROUP_CLASSES, prefix="")
    groups = {}
    for name, cls in _GROUP_CLASSES.items():
        section = raw.get(name)
        section = {} if section is None else section
        if not isinstance(section, dict):
            raise ParamsError(f"{name} must be a mapping, got {type(section).__name__}")
        groups[name] = _train_params(section) if cls is TrainParams else _build(cls, section, name)
    return Params(**groups)


def _build(cls: type, section: dict[str, Any], group: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(section, fields, prefix=f"{group}.")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in section.items():
        key = f"{group}.{name}"
        _check_type(key, value, hints[name])
        _check_metadata(key, value, fields[name].metadata)
        values[name] = value
    return cls(**values)


def _train_params(section: dict[str, Any]) -> TrainParams:
    from transformers import TrainingArguments  # heavy import, only needed to validate this group

    known = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    allowed = {
        **dict.fromkeys(PIPELINE_TRAIN_KEYS),
        **{k: v for k, v in known.items() if k not in PIPELINE_OWNED_TRAINING_ARGS},
    }
    for name in section:
        if name in PIPELINE_OWNED_TRAINING_ARGS and name not in PIPELINE_TRAIN_KEYS:
            raise ParamsError(f"train.{name} is set by the pipeline and cannot be overridden in params.yaml")
    _reject_unknown(section, allowed, prefix="train.", what="TrainingArguments field")
    own = _build(TrainParams, {k: v for k, v in section.items() if k in PIPELINE_TRAIN_KEYS}, "train")
    hints = typing.get_type_hints(TrainingArguments)
    training_args = {}
    for name, value in section.items():
        if name in PIPELINE_TRAIN_KEYS:
            continue
        key = f"train.{name}"
        _check_type(key, value, hints.get(name, Any), lenient=True)
        if name in TRAINING_ARG_BOUNDS and value is not None:
            minimum, inclusive = TRAINING_ARG_BOUNDS[name]
            _check_metadata(key, value, {"min": minimum, "inclusive": inclusive})
        training_args[name] = value
    limit = training_args.get("save_total_limit")
    if own.average_top_epochs > 1 and limit is not None:
        raise ParamsError(
            f"train.save_total_limit ({limit}) would delete epochs that train.average_top_epochs "
            f"({own.average_top_epochs}) averages; remove it: the pipeline keeps every epoch's checkpoint "
            "until training ends, then removes the folder"
        )
    return dataclasses.replace(own, training_args=training_args)


def _reject_unknown(section: dict, known: typing.Mapping, prefix: str, what: str = "key") -> None:
    for name in section:
        if name in known:
            continue
        hint = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
        suggestion = f"; did you mean {prefix}{hint[0]}?" if hint else ""
        allowed = "" if len(known) > 30 else f" (allowed: {', '.join(known)})"
        raise ParamsError(f"unknown {what} {prefix}{name}{suggestion}{allowed}")


def _check_type(key: str, value: Any, hint: Any, lenient: bool = False) -> None:
    """Raise ParamsError unless `value` fits the annotation `hint`.

    `lenient` accepts annotations we do not model (enums, dicts); TrainingArguments itself checks
    those when the train stage builds it.
    """
    if _fits(value, hint, lenient):
        return
    raise ParamsError(f"{key} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")


def _fits(value: Any, hint: Any, lenient: bool) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg, lenient) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, item, lenient) for v in value)
    return lenient


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _check_metadata(key: str, value: Any, metadata: typing.Mapping) -> None:
    if value is None:
        return
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)  # YAML spelling
        raise ParamsError(f"{key} must be one of {shown}; got {value!r}")
    inclusive = metadata.get("inclusive", True)
    if "min" in metadata:
        low = metadata["min"]
        if value < low or (not inclusive and value == low):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise ParamsError(f"{key} must be {bound}, got {value!r}")
    if "max" in metadata:
        high = metadata["max"]
        if value > high or (not inclusive and value == high):
            bound = f"<= {high}" if inclusive else f"< {high}"
            raise ParamsError(f"{key} must be {bound}, got {value!r}")
