"""The pipeline's parameters: one frozen dataclass per `params.yaml` group, validated on load.

Every stage calls `load_params()` once and reads its own group. Validation happens for the whole
file, so a typo in `train:` is reported even by `prepare`, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError

__all__ = ["Params", "ParamsError", "load_params", "params_from_dict"]

PARAMS_FILE = "params.yaml"

# The packaged copy of this Hub model is used when the package is installed (see modeling.py).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# auto: the SemEval files in prepare.dir, else the Hub's copy, else the bundled demo data set.
SOURCES = ("auto", "semeval", "hub", "demo", "files")
HEADS = ("cls", "label_aware")
# The three scores the task is judged on, and their mean: one number for "good on all three at
# once". Any of the four can pick the epoch kept (train.select_epoch_by) and be what threshold
# tuning maximises (evaluate.objective).
HEADLINE_METRICS = ("jaccard", "f1_micro", "f1_macro")
HEADLINE_MEAN = "headline_mean"
SELECTABLE_METRICS = (HEADLINE_MEAN, *HEADLINE_METRICS)
BF16_CHOICES = ("auto", True, False)
LOSSES = ("bce", "asymmetric")
HASHTAG_MODES = ("keep", "strip", "segment")

# The TrainingArguments the pipeline trains with unless `train:` says otherwise (a key left out
# of params.yaml takes this value, not the Hugging Face default).
DEFAULT_TRAINING_ARGS: dict[str, Any] = {
    "learning_rate": 1.0e-4,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "num_train_epochs": 6,
    "warmup_steps": 0.1,  # transformers 5: a float below 1 is a ratio of the total steps
    "weight_decay": 0.01,
    "train_sampling_strategy": "group_by_length",
    "logging_steps": 50,
    "seed": 42,
}

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

# A params file needs a few dozen values. YAML aliases make a few hundred bytes into billions of
# values ("billion laughs"): cheap as shared references, but not to walk or to show in an error.
MAX_VALUES = 100_000
# An error message shows a value's repr up to this many characters, then its full length.
SHOWN_CHARS = 80


def _choices(*values: Any) -> dict:
    return {"choices": values}


def _at_least(minimum: float, inclusive: bool = True) -> dict:
    return {"min": minimum, "inclusive": inclusive}


def _between(minimum: float, maximum: float) -> dict:
    return {"min": minimum, "max": maximum}


# numpy and sklearn take seeds below 2**32; a bigger one passes TrainingArguments and fails later.
SEED_RANGE = _between(0, 2**32 - 1)
# Far above any real batch or sequence, low enough that a typo fails here and not in torch.
MAX_SIZE = 1_000_000

# Bounds for the TrainingArguments a user is most likely to get wrong, in field metadata's form.
TRAINING_ARG_BOUNDS: dict[str, dict] = {
    "learning_rate": _at_least(0.0, inclusive=False),
    "per_device_train_batch_size": _between(1, MAX_SIZE),
    "per_device_eval_batch_size": _between(1, MAX_SIZE),
    "gradient_accumulation_steps": _between(1, MAX_SIZE),
    "eval_accumulation_steps": _between(1, MAX_SIZE),
    "num_train_epochs": _at_least(0.0, inclusive=False),
    "weight_decay": _at_least(0.0),
    "warmup_steps": _at_least(0.0),
    "max_grad_norm": _at_least(0.0),
    "logging_steps": _at_least(0.0, inclusive=False),
    "dataloader_num_workers": _between(0, 1024),
    "seed": SEED_RANGE,
    "data_seed": SEED_RANGE,
}

# TrainingArguments values that TrainingArguments accepts but the pipeline cannot honour: it ranks
# the epochs (and scores their average) by metrics computed from every validation prediction at
# once, in one array, at the end of each epoch, and keeps only epochs that have a checkpoint.
UNSUPPORTED_TRAINING_ARGS: dict[str, tuple[Any, str]] = {
    "prediction_loss_only": (
        True,
        (
            "evaluation would return the loss alone, and the epochs are ranked by metrics computed from the "
            "predictions (training would fail after its first epoch)"
        ),
    ),
    "batch_eval_metrics": (
        True,
        "the metrics that rank the epochs need every validation prediction at once, not batch by batch",
    ),
    "eval_do_concat_batches": (
        False,
        "the metrics that rank the epochs need the validation predictions as one array, not a list of batches",
    ),
    "dataloader_drop_last": (
        True,
        (
            "it drops the last validation batch too, so the epochs would be ranked on part of validation "
            "(on none of it when validation is smaller than a batch)"
        ),
    ),
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
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


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
    head: str = field(default="label_aware", metadata=_choices(*HEADS))


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
    seed: int = field(default=42, metadata=SEED_RANGE)

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

    max_length: int = field(default=128, metadata=_between(2, MAX_SIZE))  # the model's own limit is checked later


@dataclass(frozen=True)
class NormaliseParams:
    """`normalise:` - how texts are rewritten before the tokenizer sees them (see normalise.py);
    each part is a switch. Recorded in the trained model, so predict and load() do the same.

    The defaults clean the text and split hashtags into words: literal `\\n`, HTML entities and
    emoji (which the default uncased WordPiece vocabulary turns into [UNK]) on, `#BestDayEver` ->
    `Best Day Ever`; @handles and URLs as written. Chosen on SemEval-2018 E-c validation over three
    seeds: every part on lowered macro-F1, the cleaning parts tied with no normalisation, and
    hashtag segmentation on top of them raised the validation headline mean (docs/experiments.md)."""

    escaped_newlines: bool = True  # a backslash followed by n (a line break in the SemEval files) -> a space
    html_entities: bool = True  # `&amp;` -> `&` (the official files keep tweets HTML-escaped)
    mentions: bool = False  # @handle -> @user
    urls: bool = False  # http://... and www.... -> http
    emoji: bool = True  # an emoji -> its name in words
    hashtags: str = field(default="segment", metadata=_choices(*HASHTAG_MODES))  # keep | strip `#` | segment

    @property
    def is_identity(self) -> bool:
        """True when no part is on: texts reach the tokenizer exactly as given."""
        switches = (self.escaped_newlines, self.html_entities, self.mentions, self.urls, self.emoji)
        return not any(switches) and self.hashtags == "keep"


@dataclass(frozen=True)
class TrainParams:
    """`train:` - the loss options and `bf16`, plus any Hugging Face `TrainingArguments` field,
    passed through as `training_args`."""

    bf16: str | bool = field(default="auto", metadata=_choices(*BF16_CHOICES))
    # Weight each label's positive examples by its negatives/positives ratio in train, capped.
    pos_weight: bool = False
    pos_weight_cap: float = field(default=10.0, metadata=_at_least(1.0))
    # bce, or asymmetric: ASL, which shrinks the loss of easy absent labels (the asymmetric_* keys).
    loss: str = field(default="bce", metadata=_choices(*LOSSES))
    asymmetric_gamma_negative: float = field(default=4.0, metadata=_at_least(0.0))
    asymmetric_gamma_positive: float = field(default=0.0, metadata=_at_least(0.0))
    asymmetric_clip: float = field(default=0.05, metadata={"min": 0.0, "max": 0.5})
    # Share of SpanEmo's label-correlation loss in the total loss (the rest is BCE); 0 turns it off.
    label_correlation_weight: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    # The validation metric (at threshold 0.5) whose best epoch is kept as the trained model.
    select_epoch_by: str = field(default=HEADLINE_MEAN, metadata=_choices(*SELECTABLE_METRICS))
    # The trained model is the weight average of this many best epochs by `select_epoch_by`
    # (1: the best epoch alone).
    average_top_epochs: int = field(default=3, metadata=_at_least(1))
    # The embeddings and the first N encoder layers keep their pretrained weights (0: all train).
    # Their backward pass and optimizer state go away, so a step costs less.
    freeze_layers: int = field(default=0, metadata=_at_least(0))
    # Layer-wise learning-rate decay: the head trains at learning_rate, each encoder layer below
    # it at `decay` times the rate of the one above, the embeddings lowest (1.0: one rate for all).
    layer_lr_decay: float = field(default=1.0, metadata={"min": 0.0, "inclusive": False, "max": 1.0, "max_inclusive": True})
    training_args: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAINING_ARGS))


# train: keys that the pipeline reads itself; every other key goes to TrainingArguments.
PIPELINE_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainParams) if f.name != "training_args")


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate:` - how probabilities become labels, and how fast they are computed."""

    # "tuned": fitted on the validation split (below); a number in (0, 1): one fixed threshold.
    threshold: str | float = "tuned"
    objective: str = field(default=HEADLINE_MEAN, metadata=_choices(*SELECTABLE_METRICS))
    per_label: bool = False  # also fit one threshold per label ...
    shrinkage: float = field(default=5.0, metadata=_at_least(0.0))  # ... pulled toward the global one
    batch_size: int = field(default=64, metadata=_between(1, MAX_SIZE))

    def __post_init__(self) -> None:
        if self.threshold == "tuned":
            return
        if isinstance(self.threshold, str) or not 0.0 < self.threshold < 1.0:
            raise ParamsError(f"evaluate.threshold must be 'tuned' or a number in (0, 1), got {_shown(self.threshold)}")


@dataclass(frozen=True)
class ExportParams:
    """`export:` - which serving files the export stage writes, and how exact ONNX must be."""

    onnx: bool = True  # model.onnx: fp32 graph with fused transformer ops
    int8: bool = True  # model.int8.onnx: dynamically quantised (needs onnx: true)
    # The FFN output projections of this many leading layers stay fp32 in the int8 graph.
    int8_fp32_ffn_outputs: int = field(default=1, metadata=_at_least(0))
    # openvino_model.xml/.bin: static int8 (NNCF, calibrated on validation texts) on OpenVINO.
    openvino_int8: bool = True
    # Largest allowed |p_onnx - p_torch| on the test split; a bigger one fails the stage.
    parity_tolerance: float = field(default=1e-4, metadata={"min": 0.0, "inclusive": False})
    # Least share of the test split's label decisions an int8 backend must make as PyTorch does.
    int8_min_agreement: float = field(default=0.97, metadata={"min": 0.0, "max": 1.0})

    def __post_init__(self) -> None:
        if self.int8 and not self.onnx:
            raise ParamsError("export.int8 needs export.onnx: true (the int8 model is quantised from model.onnx)")


@dataclass(frozen=True)
class LaunchParams:
    """`launch:` - how many processes train runs on (torchrun data parallelism when > 1)."""

    num_processes: int = field(default=1, metadata=_between(1, 1024))  # torchrun starts them all on this machine


@dataclass(frozen=True)
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    prepare: PrepareParams = field(default_factory=PrepareParams)
    normalise: NormaliseParams = field(default_factory=NormaliseParams)
    tokenize: TokenizeParams = field(default_factory=TokenizeParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    export: ExportParams = field(default_factory=ExportParams)
    launch: LaunchParams = field(default_factory=LaunchParams)


_GROUP_CLASSES = {
    "model": ModelParams,
    "prepare": PrepareParams,
    "normalise": NormaliseParams,
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
        except (yaml.YAMLError, ValueError) as error:  # ValueError: an impossible date, a 5000-digit integer
            raise ParamsError(f"{path} is not valid YAML: {_cut(str(error), 10 * SHOWN_CHARS)}") from error
        except RecursionError as error:
            raise ParamsError(f"{path} nests lists or mappings too deeply to read") from error
    _check_size(raw, str(path))
    return params_from_dict(raw)


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Validate a params mapping shaped like `params.yaml`; what it leaves out takes the defaults
    above, which are exactly what the repository's params.yaml says."""
    if not isinstance(raw, dict):
        raise ParamsError("params must be a mapping of groups (model, prepare, normalise, tokenize, train, evaluate, export, launch)")
    _check_size(raw, "params")
    _reject_unknown(raw, _GROUP_CLASSES, prefix="")
    groups = {}
    for name, cls in _GROUP_CLASSES.items():
        section = raw.get(name)
        section = {} if section is None else section
        if not isinstance(section, dict):
            raise ParamsError(f"{name} must be a mapping, got {type(section).__name__}")
        groups[name] = _train_params(section) if cls is TrainParams else _build(cls, section, name)
    params = Params(**groups)
    _check_activation_checkpointing(params)
    return params


def group_from_dict(name: str, section: Any) -> Any:
    """One group (not `train`, whose check needs transformers) validated as params_from_dict would."""
    cls = _GROUP_CLASSES[name]
    if cls is TrainParams:
        raise ValueError("the train group is validated with the whole params (params_from_dict)")
    if not isinstance(section, dict):
        raise ParamsError(f"{name} must be a mapping, got {type(section).__name__}")
    _check_size(section, name)
    return _build(cls, section, name)


def _check_size(document: Any, where: str) -> None:
    """Refuse a document that holds more than MAX_VALUES values once its aliases are expanded.

    The walk counts every visit, so a list that an alias repeats counts each time, and it stops at
    the limit: fast on a bomb, and on a structure that contains itself."""
    count, pending = 0, [iter((document,))]
    while pending:
        value = next(pending[-1], pending)  # the list itself marks an exhausted iterator
        if value is pending:
            pending.pop()
            continue
        count += 1
        if count > MAX_VALUES:
            raise ParamsError(
                f"{where} expands to more than {MAX_VALUES:,} values (YAML aliases repeat what they point to); "
                "a params file needs a few dozen"
            )
        if isinstance(value, dict):
            pending.append(itertools.chain.from_iterable(value.items()))
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.append(iter(value))


def _build(cls: type, section: dict[str, Any], group: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(section, fields, prefix=f"{group}.")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in section.items():
        key = f"{group}.{name}"
        _check_type(key, value, hints[name])
        _check_finite(key, value)
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
        _check_finite(key, value)
        _check_metadata(key, value, TRAINING_ARG_BOUNDS.get(name, {}))
        _check_supported(name, value)
        training_args[name] = value
    training_args = {**DEFAULT_TRAINING_ARGS, **training_args}
    _check_evaluation_schedule(own, training_args)
    limit = training_args.get("save_total_limit")
    if own.average_top_epochs > 1 and limit is not None:
        raise ParamsError(
            f"train.save_total_limit ({_shown(limit)}) would delete epochs that train.average_top_epochs "
            f"({own.average_top_epochs}) averages; remove it: the pipeline keeps every epoch's checkpoint "
            "until training ends, then removes the folder"
        )
    return dataclasses.replace(own, training_args=training_args)


def _check_supported(name: str, value: Any) -> None:
    key = f"train.{name}"
    if name in UNSUPPORTED_TRAINING_ARGS:
        refused, why = UNSUPPORTED_TRAINING_ARGS[name]
        if value is refused:
            raise ParamsError(f"{key}: {str(refused).lower()} is not supported by the pipeline: {why}")
    if name == "label_names" and value not in (None, ["labels"]):
        raise ParamsError(
            f"{key}: the encoded data keeps its targets in the column 'labels'; with {_shown(value)} the Trainer "
            "finds no labels and computes no metrics to rank the epochs by (leave it out)"
        )


def _check_evaluation_schedule(own: TrainParams, training_args: dict[str, Any]) -> None:
    """The epochs ranked must be evaluated epochs that have a checkpoint."""
    if training_args.get("eval_on_start") is True and own.average_top_epochs > 1:
        raise ParamsError(
            "train.eval_on_start evaluates the untrained model, which has no checkpoint: "
            f"train.average_top_epochs ({own.average_top_epochs}) could pick it and fail at the end of training"
        )
    delay, epochs = training_args.get("eval_delay"), training_args["num_train_epochs"]
    by_epochs = training_args.get("max_steps", -1) <= 0
    if isinstance(delay, (int, float)) and by_epochs and delay > epochs:
        raise ParamsError(
            f"train.eval_delay ({_shown(delay)}) is past the last epoch ({epochs}): no epoch would be evaluated, "
            "and the pipeline keeps the best evaluated one"
        )


def _check_activation_checkpointing(params: Params) -> None:
    if params.model.head != "label_aware":
        return
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        if params.train.training_args.get(name) is True:
            raise ParamsError(
                f"train.{name}: the label-aware head (model.head: label_aware) does not support activation "
                "checkpointing; the Trainer would fail when training starts (use model.head: cls, or leave it out)"
            )


def _reject_unknown(section: dict, known: typing.Mapping, prefix: str, what: str = "key") -> None:
    for name in section:
        if name in known:
            continue
        shown = _key_name(name)
        hint = difflib.get_close_matches(shown, list(known), n=1, cutoff=0.6)
        suggestion = f"; did you mean {prefix}{hint[0]}?" if hint else ""
        allowed = "" if len(known) > 30 else f" (allowed: {', '.join(known)})"
        raise ParamsError(f"unknown {what} {prefix}{shown}{suggestion}{allowed}")


def _key_name(name: Any) -> str:
    return name if isinstance(name, str) and len(name) <= SHOWN_CHARS else _shown(name)


def _check_type(key: str, value: Any, hint: Any, lenient: bool = False) -> None:
    """Raise ParamsError unless `value` fits the annotation `hint`.

    `lenient` accepts annotations we do not model (enums, dicts); TrainingArguments itself checks
    those when the train stage builds it.
    """
    if _fits(value, hint, lenient):
        return
    raise ParamsError(f"{key} must be {_describe(hint)}, got {_shown(value)} ({type(value).__name__})")


def _check_finite(key: str, value: Any) -> None:
    """Raise ParamsError for a NaN or infinity anywhere in `value`: every comparison with NaN is
    false, so a NaN passes every bound (and would switch off the ONNX parity gate)."""
    pending = [(key, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ParamsError(f"{path} must be a finite number, got {item!r}")
        if isinstance(item, dict):
            pending.extend((f"{path}.{_key_name(name)}", inner) for name, inner in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))


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
        raise ParamsError(f"{key} must be one of {shown}; got {_shown(value)}")
    inclusive = metadata.get("inclusive", True)
    if "min" in metadata:
        low = metadata["min"]
        if value < low or (not inclusive and value == low):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise ParamsError(f"{key} must be {bound}, got {_shown(value)}")
    if "max" in metadata:
        high, inclusive = metadata["max"], metadata.get("max_inclusive", inclusive)
        if value > high or (not inclusive and value == high):
            bound = f"<= {high}" if inclusive else f"< {high}"
            raise ParamsError(f"{key} must be {bound}, got {_shown(value)}")


def _shown(value: Any) -> str:
    """repr(value) as an error message shows it: cut after SHOWN_CHARS characters, with the full
    length. The repr is built piece by piece and stops at the cut, so a huge value, one that holds
    itself or an alias bomb costs no more to show than a short one."""
    text, pieces = "", _repr_pieces(value)
    for piece in pieces:
        text += piece
        if len(text) > SHOWN_CHARS:
            pieces.close()
            unit = "character" if isinstance(value, str) else "item" if isinstance(value, (list, tuple, dict)) else ""
            size = f" ({len(value):,} {unit}{'s' if len(value) != 1 else ''})" if unit else ""
            return f"{text[:SHOWN_CHARS]}...{size}"
    return text


def _cut(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _repr_pieces(value: Any) -> typing.Iterator[str]:
    """repr(value) in pieces, for lists, tuples and dicts (what YAML gives) item by item."""
    if isinstance(value, str):
        yield repr(value[: SHOWN_CHARS + 1])  # longer than the cut whenever the string is
    elif isinstance(value, int) and value.bit_length() > 4 * SHOWN_CHARS:  # repr() refuses > 4300 digits
        yield f"<an integer of {value.bit_length():,} bits>"
    elif isinstance(value, dict):
        yield "{"
        for i, (name, item) in enumerate(value.items()):
            yield ", " if i else ""
            yield from _repr_pieces(name)
            yield ": "
            yield from _repr_pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "[" if isinstance(value, list) else "("
        for i, item in enumerate(value):
            yield ", " if i else ""
            yield from _repr_pieces(item)
        yield "]" if isinstance(value, list) else ("," if len(value) == 1 else "") + ")"
    else:
        yield repr(value)
