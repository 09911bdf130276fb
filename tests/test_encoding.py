"""encode_splits: token ids truncated at the tokenizer's limit, unpadded, with float multi-hot labels."""

import pandas as pd
import pytest

from mlbert.data import Splits
from mlbert.encoding import encode_splits
from mlbert.normalise import IDENTITY, TWEETS

LABELS = ["joy", "anger", "fear"]  # not alphabetical: the encoding must follow this order


def tiny_splits(texts, label_lists):
    frame = pd.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts, "labels": label_lists})
    return Splits(train=frame, validation=frame.iloc[:1], test=frame.iloc[1:], labels=LABELS)


@pytest.fixture
def encoded(tokenizer):
    return encode_splits(tiny_splits(["so scared", "how dare you", "nothing much"], [["fear"], ["anger", "joy"], []]), tokenizer, IDENTITY)


def test_labels_are_float_multi_hot_rows_in_the_label_list_order(encoded):
    assert encoded["train"]["labels"] == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert encoded["train"].features["labels"].feature.dtype == "float32"  # BCE needs float targets


def test_every_split_holds_token_ids_masks_types_and_labels_only(encoded):
    assert list(encoded) == ["train", "validation", "test"]
    for split in encoded.values():
        assert sorted(split.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert [len(split) for split in encoded.values()] == [3, 1, 2]


def test_texts_are_cut_at_the_tokenizer_max_length_and_left_unpadded():
    from mlbert.modeling import load_tokenizer, resolve_model
    from mlbert.params import DEFAULT_MODEL

    tokenizer = load_tokenizer(resolve_model(DEFAULT_MODEL), max_length=8)
    long, short = "one two three four five six seven eight nine ten", "hi"
    encoded = encode_splits(tiny_splits([long, short], [[], []]), tokenizer, IDENTITY)["train"]
    ids = tokenizer.convert_tokens_to_ids
    assert encoded["input_ids"] == [
        ids(["[CLS]", "one", "two", "three", "four", "five", "six", "[SEP]"]),  # 8 tokens
        ids(["[CLS]", "hi", "[SEP]"]),  # no padding up to the longest
    ]
    assert encoded["attention_mask"] == [[1] * 8, [1] * 3]


def test_texts_are_normalised_before_they_are_tokenized(tokenizer):
    raw = "@someone so angry \\n #fuming 😡"
    encoded = encode_splits(tiny_splits([raw], [["anger"]]), tokenizer, TWEETS)["train"]
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert tokens == ["[CLS]", "@", "user", "so", "angry", "fu", "##ming", "enraged", "face", "[SEP]"]
