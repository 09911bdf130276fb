"""params.yaml is validated on load: bad keys, types and ranges are named before any work."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from mlbert.errors import ParamsError
from mlbert.params import (
    DEFAULT_MODEL,
    DEFAULT_TRAINING_ARGS,
    EvaluateParams,
    ExportParams,
    LaunchParams,
    ModelParams,
    Params,
    PrepareParams,
    TokenizeParams,
    TrainParams,
    load_params,
    params_from_dict,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_params_file_is_valid():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.model.name == DEFAULT_MODEL
    assert params.prepare.source == "auto"
    assert params.train.training_args["learning_rate"] > 0


def test_training_args_pass_through_over_the_pipeline_defaults():
    params = params_from_dict({"train": {"learning_rate": 3e-5, "num_train_epochs": 2, "optim": "adamw_torch"}})
    assert params.train.training_args == {
        **DEFAULT_TRAINING_ARGS, "learning_rate": 3e-5, "num_train_epochs": 2, "optim": "adamw_torch"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trian": {}}, r"unknown key trian; did you mean train\?"),
        ({"prepare": {"max_train_sample": 5}}, r"prepare.max_train_sample; did you mean prepare.max_train_samples\?"),
        ({"train": {"learnig_rate": 1e-4}}, r"train.learnig_rate; did you mean train.learning_rate\?"),
        ({"train": {"no_such_argument": 1}}, r"unknown TrainingArguments field train.no_such_argument"),
    ],
)
def test_unknown_keys_are_named_with_a_suggestion(raw, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tokenize": {"max_length": "long"}}, "tokenize.max_length must be an integer"),
        ({"prepare": {"max_eval_samples": 2.5}}, "prepare.max_eval_samples must be an integer or null"),
        ({"train": {"learning_rate": "fast"}}, "train.learning_rate must be a number"),
        ({"train": {"per_device_train_batch_size": 8.5}}, "train.per_device_train_batch_size must be an integer"),
        ({"prepare": {"label_columns": "joy"}}, "prepare.label_columns must be a list of a string or null"),
        ({"model": []}, "model must be a mapping"),
    ],
)
def test_wrong_types_are_named(raw, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"learning_rate": 0}}, "train.learning_rate must be > 0"),
        ({"train": {"learning_rate": -1e-5}}, "train.learning_rate must be > 0"),
        ({"train": {"per_device_train_batch_size": 0}}, "train.per_device_train_batch_size must be >= 1"),
        ({"train": {"num_train_epochs": 0}}, "train.num_train_epochs must be > 0"),
        ({"tokenize": {"max_length": 1}}, "tokenize.max_length must be >= 2"),
        ({"evaluate": {"threshold": 1.0}}, r"evaluate.threshold must be 'tuned' or a number in \(0, 1\)"),
        ({"evaluate": {"threshold": "best"}}, r"evaluate.threshold must be 'tuned' or a number in \(0, 1\)"),
        ({"evaluate": {"objective": "f1"}}, "evaluate.objective must be one of headline_mean, jaccard, f1_micro, f1_macro"),
        ({"evaluate": {"shrinkage": -1}}, "evaluate.shrinkage must be >= 0.0"),
        ({"model": {"head": "pooler"}}, "model.head must be one of cls, label_aware"),
        ({"train": {"pos_weight_cap": 0.5}}, "train.pos_weight_cap must be >= 1.0"),
        ({"train": {"label_correlation_weight": 1.5}}, "train.label_correlation_weight must be <= 1.0"),
        ({"train": {"pos_weight": "yes"}}, "train.pos_weight must be true/false"),
        ({"train": {"loss": "focal"}}, "train.loss must be one of bce, asymmetric"),
        ({"train": {"asymmetric_gamma_negative": -1}}, "train.asymmetric_gamma_negative must be >= 0.0"),
        ({"train": {"asymmetric_clip": 0.9}}, "train.asymmetric_clip must be <= 0.5"),
        ({"prepare": {"validation_fraction": 0}}, "prepare.validation_fraction must be > 0.0"),
        ({"prepare": {"source": "web"}}, "prepare.source must be one of auto, semeval, hub, demo, files"),
        ({"train": {"bf16": "yes"}}, "train.bf16 must be one of auto, true, false"),
    ],
)
def test_out_of_range_values_are_named(raw, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict(raw)


def test_loss_options_are_read_by_the_pipeline_not_passed_to_training_arguments():
    params = params_from_dict({"train": {"pos_weight": True, "label_correlation_weight": 0.2, "learning_rate": 3e-5}})
    assert params.train.pos_weight is True and params.train.label_correlation_weight == 0.2
    assert params.train.training_args == {**DEFAULT_TRAINING_ARGS, "learning_rate": 3e-5}


@pytest.mark.parametrize("key", ["output_dir", "eval_strategy", "metric_for_best_model", "report_to"])
def test_arguments_the_pipeline_owns_cannot_be_overridden(key):
    with pytest.raises(ParamsError, match=f"train.{key} is set by the pipeline"):
        params_from_dict({"train": {key: "x"}})


def test_own_files_need_a_train_file():
    with pytest.raises(ParamsError, match="prepare.train_file is required"):
        params_from_dict({"prepare": {"source": "files", "label_column": "labels"}})


@pytest.mark.parametrize(
    "labels", [{}, {"label_column": "labels", "label_columns": ["a"]}], ids=["neither", "both"]
)
def test_own_files_need_exactly_one_label_layout(labels):
    with pytest.raises(ParamsError, match="exactly one of prepare.label_columns"):
        params_from_dict({"prepare": {"source": "files", "train_file": "t.csv", **labels}})


def test_a_missing_params_file_says_where_to_run(tmp_path):
    with pytest.raises(ParamsError, match="not found: run from the repository root"):
        load_params(tmp_path / "params.yaml")


def test_broken_yaml_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_params_round_trip_through_yaml(tmp_path):
    # A value other than the default in every group, so that a key dropped on the way shows.
    params = Params(
        model=ModelParams(name="./models/encoder", trust_remote_code=True, allow_pickle_weights=True, head="cls"),
        prepare=PrepareParams(
            source="files", dir="data/own", train_file="train.csv", validation_file="dev.jsonl", test_file=None,
            text_column="tweet", id_column="id", label_columns=["joy", "anger"], labels=["anger", "joy"],
            validation_fraction=0.15, test_fraction=0.25, max_train_samples=100, max_eval_samples=20, seed=7,
        ),
        tokenize=TokenizeParams(max_length=64),
        train=TrainParams(
            bf16=False, pos_weight=True, pos_weight_cap=5.0, label_correlation_weight=0.0, select_epoch_by="f1_macro",
            average_top_epochs=1,
            training_args={**DEFAULT_TRAINING_ARGS, "learning_rate": 3e-5, "save_total_limit": 2, "optim": "adamw_torch"},
        ),
        evaluate=EvaluateParams(threshold=0.35, objective="jaccard", per_label=True, shrinkage=0.0, batch_size=16),
        export=ExportParams(onnx=True, int8=False, int8_fp32_ffn_outputs=0, parity_tolerance=1e-3),
        launch=LaunchParams(num_processes=2),
    )  # fmt: skip
    layout = dataclasses.asdict(params)
    layout["train"].update(layout["train"].pop("training_args"))  # params.yaml: one flat train group
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(layout, sort_keys=False))
    assert load_params(path) == params


@pytest.mark.parametrize(("text", "value"), [("3e-05", 3e-5), ("1.0e-4", 1e-4), ("2E-5", 2e-5), ("5", 5)])
def test_scientific_notation_without_a_dot_is_a_number(tmp_path, text, value):
    # `dvc exp run -S train.learning_rate=3e-5` writes `learning_rate: 3e-05`
    path = tmp_path / "params.yaml"
    path.write_text(f"train:\n  learning_rate: {text}\n")
    assert load_params(path).train.training_args["learning_rate"] == value
