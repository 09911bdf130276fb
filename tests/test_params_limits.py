"""params.yaml at its limits: alias bombs, huge values, NaN, out-of-range integers, and the
TrainingArguments the pipeline cannot honour are refused on load, with short messages."""

import dataclasses
import itertools
import math
import time
import typing

import numpy as np
import pytest
import yaml

from mlbert.errors import ParamsError
from mlbert.params import (
    PIPELINE_OWNED_TRAINING_ARGS,
    SEED_RANGE,
    UNSUPPORTED_TRAINING_ARGS,
    EvaluateParams,
    ExportParams,
    PrepareParams,
    TrainParams,
    load_params,
    params_from_dict,
)


def write_params(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def alias_bomb(levels=9, width=9):
    """`prepare.labels` as nested aliases: a few hundred bytes, width**levels strings expanded."""
    anchors = "abcdefghijklmnop"[:levels]
    lines = ["prepare:", "  labels:", "  - &a [" + ", ".join(["x"] * width) + "]"]
    for previous, anchor in itertools.pairwise(anchors):
        lines.append(f"  - &{anchor} [" + ", ".join([f"*{previous}"] * width) + "]")
    return "\n".join(lines) + "\n"


# --- alias bombs and long values -------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_once_with_a_short_message(tmp_path):
    path = write_params(tmp_path, alias_bomb())
    assert path.stat().st_size < 500
    start = time.perf_counter()
    with pytest.raises(ParamsError) as raised:
        load_params(path)
    assert time.perf_counter() - start < 0.5
    message = str(raised.value)
    assert str(path) in message and "expands to more than 100,000 values (YAML aliases" in message
    assert len(message) < 500


def test_an_alias_bomb_passed_as_a_mapping_is_refused_too():
    raw = yaml.safe_load(alias_bomb())
    start = time.perf_counter()
    with pytest.raises(ParamsError, match="expands to more than 100,000 values") as raised:
        params_from_dict(raw)
    assert time.perf_counter() - start < 0.5 and len(str(raised.value)) < 500


def test_a_list_that_contains_itself_is_refused(tmp_path):
    path = write_params(tmp_path, "prepare:\n  labels: &self [joy, *self]\n")
    with pytest.raises(ParamsError, match="expands to more than"):
        load_params(path)


def test_a_long_string_in_a_type_error_is_shown_cut_with_its_length(tmp_path):
    path = write_params(tmp_path, f"tokenize:\n  max_length: {'x' * 100_000}\n")
    with pytest.raises(ParamsError) as raised:
        load_params(path)
    message = str(raised.value)
    assert message.startswith("tokenize.max_length must be an integer, got 'xxxxx")
    assert "... (100,000 characters) (str)" in message and len(message) < 200


def test_a_long_list_in_a_type_error_is_shown_cut_with_its_length(tmp_path):
    columns = ", ".join(f"label{i}" for i in range(10_000))
    path = write_params(tmp_path, f"prepare:\n  label_columns: [{columns}, 7]\n")
    with pytest.raises(ParamsError, match=r"prepare.label_columns must be .*, got \['label0', .*\.\.\. \(10,001 items\)"):
        load_params(path)


def test_a_long_unknown_key_is_shown_cut(tmp_path):
    path = write_params(tmp_path, f"train:\n  {'y' * 1000}: 1\n")
    with pytest.raises(ParamsError, match=r"unknown TrainingArguments field train.'yyy.*\.\.\. \(1,000 characters\)$"):
        load_params(path)


def test_an_integer_too_long_to_print_is_named_not_printed():
    with pytest.raises(ParamsError, match=r"must be <= 1000000, got <an integer of 33,220 bits>"):
        params_from_dict({"train": {"per_device_train_batch_size": 10**10_000}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"prepare:\n  seed: {'9' * 5000}\n", "is not valid YAML: Exceeds the limit"),  # Python refuses > 4300 digits
        ("prepare:\n  dir: 2024-13-01\n", "is not valid YAML: month must be in 1..12"),
        ("prepare:\n  labels: " + "[" * 5000 + "]" * 5000 + "\n", "nests lists or mappings too deeply"),
    ],
    ids=["5000-digit integer", "impossible date", "deep nesting"],
)
def test_yaml_that_python_cannot_build_is_a_params_error(tmp_path, text, message):
    with pytest.raises(ParamsError, match=message):
        load_params(write_params(tmp_path, text))


# --- NaN and infinity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_value", "key"),
    [
        ("export:\n  parity_tolerance: .nan", "export.parity_tolerance"),
        ("evaluate:\n  shrinkage: .nan", "evaluate.shrinkage"),
        ("evaluate:\n  threshold: .nan", "evaluate.threshold"),
        ("prepare:\n  validation_fraction: .nan", "prepare.validation_fraction"),
        ("train:\n  pos_weight_cap: .inf", "train.pos_weight_cap"),
        ("train:\n  label_correlation_weight: .nan", "train.label_correlation_weight"),
        ("train:\n  learning_rate: .nan", "train.learning_rate"),
        ("train:\n  warmup_steps: .nan", "train.warmup_steps"),
        ("train:\n  weight_decay: -.inf", "train.weight_decay"),
        ("train:\n  max_grad_norm: .nan", "train.max_grad_norm"),
        ("train:\n  num_train_epochs: .inf", "train.num_train_epochs"),
        ("train:\n  adam_beta2: .nan", "train.adam_beta2"),
        ("train:\n  lr_scheduler_kwargs: {min_lr: .nan}", "train.lr_scheduler_kwargs.min_lr"),
    ],
)
def test_nan_and_infinity_are_refused_with_the_key_named(tmp_path, yaml_value, key):
    with pytest.raises(ParamsError, match=f"^{key} must be a finite number, got (nan|inf|-inf)$"):
        load_params(write_params(tmp_path, yaml_value + "\n"))


def float_fields(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if float in (typing.get_args(hints[f.name]) or (hints[f.name],))]


@pytest.mark.parametrize(
    ("group", "name"),
    [(group, name) for group, cls in {"prepare": PrepareParams, "train": TrainParams, "evaluate": EvaluateParams,
                                      "export": ExportParams}.items() for name in float_fields(cls)],
)  # fmt: skip
def test_every_float_param_of_the_pipeline_refuses_nan(group, name):
    with pytest.raises(ParamsError, match=f"{group}.{name} must be a finite number"):
        params_from_dict({group: {name: math.nan}})


def training_argument_float_fields() -> list[str]:
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    return [
        f.name for f in dataclasses.fields(TrainingArguments)
        if f.init and f.name not in PIPELINE_OWNED_TRAINING_ARGS
        and float in (typing.get_args(hints[f.name]) or (hints[f.name],))
    ]  # fmt: skip


@pytest.mark.parametrize("name", training_argument_float_fields())
def test_every_float_training_argument_refuses_nan_and_infinity(name):
    for value in (math.nan, math.inf):
        with pytest.raises(ParamsError, match=f"train.{name} must be a finite number"):
            params_from_dict({"train": {name: value}})


# --- integer ranges --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["prepare.seed", "train.seed", "train.data_seed"])
def test_seeds_must_fit_in_32_bits(key):
    group, name = key.split(".")
    with pytest.raises(ParamsError, match=f"{key} must be <= 4294967295, got 1099511627776"):
        params_from_dict({group: {name: 2**40}})
    with pytest.raises(ParamsError, match=f"{key} must be >= 0, got -1"):
        params_from_dict({group: {name: -1}})
    params_from_dict({group: {name: 2**32 - 1}})


def test_the_seed_range_is_the_one_numpy_accepts():
    np.random.seed(SEED_RANGE["max"])
    np.random.seed(SEED_RANGE["min"])
    with pytest.raises(ValueError):
        np.random.seed(SEED_RANGE["max"] + 1)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("train.per_device_train_batch_size", "<= 1000000"),
        ("train.per_device_eval_batch_size", "<= 1000000"),
        ("train.gradient_accumulation_steps", "<= 1000000"),
        ("train.dataloader_num_workers", "<= 1024"),
        ("tokenize.max_length", "<= 1000000"),
        ("evaluate.batch_size", "<= 1000000"),
        ("launch.num_processes", "<= 1024"),
    ],
)
def test_huge_sizes_are_refused_before_any_work(key, message):
    group, name = key.split(".")
    with pytest.raises(ParamsError, match=f"{key} must be {message}, got 10000000000"):
        params_from_dict({group: {name: 10**10}})


# --- TrainingArguments the pipeline cannot honour --------------------------------------------


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"prediction_loss_only": True}, "train.prediction_loss_only: true is not supported .* loss alone"),
        ({"batch_eval_metrics": True}, "train.batch_eval_metrics: true is not supported .* at once"),
        ({"eval_do_concat_batches": False}, "train.eval_do_concat_batches: false is not supported .* one array"),
        ({"dataloader_drop_last": True}, "train.dataloader_drop_last: true is not supported .* last validation batch"),
        ({"label_names": ["label"]}, r"train.label_names: .* column 'labels'; with \['label'\] the Trainer finds no"),
        ({"eval_on_start": True}, "train.eval_on_start evaluates the untrained model, which has no checkpoint"),
        ({"eval_delay": 9, "num_train_epochs": 8}, r"train.eval_delay \(9\) is past the last epoch \(8\)"),
        ({"activation_checkpointing": True}, "train.activation_checkpointing: the label-aware head .* does not support"),
        ({"gradient_checkpointing": True}, "train.gradient_checkpointing: the label-aware head .* does not support"),
    ],
)
def test_training_arguments_that_break_the_pipeline_are_refused_with_the_reason(tmp_path, train, message):
    path = write_params(tmp_path, yaml.safe_dump({"train": train}))
    with pytest.raises(ParamsError, match=message):
        load_params(path)


@pytest.mark.parametrize(
    "raw",
    [
        {"train": {"prediction_loss_only": False, "eval_do_concat_batches": True, "dataloader_drop_last": False}},
        {"train": {"eval_accumulation_steps": 4, "remove_unused_columns": False, "include_for_metrics": ["loss"]}},
        {"train": {"label_names": ["labels"], "torch_compile": True, "max_steps": 100}},
        {"train": {"eval_on_start": True, "average_top_epochs": 1}},
        {"train": {"eval_delay": 8, "num_train_epochs": 8}},
        {"train": {"eval_delay": 20, "max_steps": 1000}},
        {"train": {"activation_checkpointing": True}, "model": {"head": "cls"}},
    ],
)
def test_the_harmless_neighbours_of_refused_arguments_pass(raw):
    params_from_dict(raw)


def test_each_refused_value_is_not_the_transformers_default():
    from transformers import TrainingArguments

    defaults = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
    for name, (refused, _) in UNSUPPORTED_TRAINING_ARGS.items():
        assert name in defaults and defaults[name] is not refused, name


def train_tiny_model(training_args: dict, head: str = "cls", validation_size: int = 5) -> None:
    """Two epochs of the pipeline's own Trainer on a tiny random BERT, `training_args` forced in
    past validation (as if params.yaml had not been checked)."""
    import sys
    import tempfile
    from pathlib import Path

    from datasets import Dataset
    from transformers import AutoTokenizer, BertForSequenceClassification, BertModel, DataCollatorWithPadding

    from mlbert.label_aware import build_label_aware
    from mlbert.modeling import model_source
    from mlbert.params import ModelParams
    from mlbert.trainer import build_training_arguments, compute_trainer_metrics, multilabel_trainer_class

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import tiny_config

    labels = ["a", "b", "c"]
    tokenizer = AutoTokenizer.from_pretrained(model_source(ModelParams()).location)
    targets = np.eye(3, dtype=np.float32)[np.arange(16) % 3]

    def dataset(size: int):
        data = Dataset.from_dict({"text": [f"text {i}" for i in range(size)], "labels": targets[:size]})
        return data.map(lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"])

    defaults = params_from_dict({"train": {"average_top_epochs": 1, "bf16": False}}).train
    args = {**defaults.training_args, "num_train_epochs": 2, "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 8, "train_sampling_strategy": "random", **training_args}  # fmt: skip
    if head == "cls":
        model = BertForSequenceClassification(tiny_config(num_labels=3, problem_type="multi_label_classification"))
    else:
        model = build_label_aware(BertModel(tiny_config()), tokenizer, labels)
    with tempfile.TemporaryDirectory() as folder:
        trainer = multilabel_trainer_class()(
            model=model, args=build_training_arguments(dataclasses.replace(defaults, training_args=args), folder),
            train_dataset=dataset(16), eval_dataset=dataset(validation_size), processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_trainer_metrics(labels, 0.5),
        )  # fmt: skip
        trainer.train()
        assert trainer.state.best_metric is not None


@pytest.mark.parametrize(
    ("training_args", "head"),
    [
        ({}, "cls"),
        *[({name: refused}, "cls") for name, (refused, _) in UNSUPPORTED_TRAINING_ARGS.items()],
        ({"label_names": ["label"]}, "cls"),
        ({"activation_checkpointing": True}, "label_aware"),
    ],
    ids=lambda value: str(value),
)
def test_the_refused_arguments_do_break_the_pipeline_trainer(training_args, head):
    """Why each is refused, checked against the installed transformers: with it the Trainer fails
    (here on a validation split smaller than one batch); without any, it trains and ranks epochs."""
    if not training_args:
        train_tiny_model(training_args, head)
        return
    with pytest.raises((KeyError, ValueError, AttributeError)):
        train_tiny_model(training_args, head)
