import numpy as np
import pytest

from mlbert.labels import (
    LabelError,
    collect_label_names,
    labels_to_multi_hot,
    parse_indicator,
    parse_label_list,
)


@pytest.mark.parametrize("cell", [1, "1", " 1 ", 1.0, "1.0", True, "true", "TRUE"])
def test_indicator_cells_that_mean_on(cell):
    assert parse_indicator(cell) is True


@pytest.mark.parametrize("cell", [0, "0", 0.0, False, "false"])
def test_indicator_cells_that_mean_off(cell):
    assert parse_indicator(cell) is False


@pytest.mark.parametrize("cell", ["2", "yes", "", "NONE", -1])
def test_indicator_rejects_anything_but_zero_or_one(cell):
    with pytest.raises(LabelError, match="expected 0 or 1"):
        parse_indicator(cell)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (["joy", "love"], ["joy", "love"]),
        (np.array(["joy"]), ["joy"]),
        ("joy;love", ["joy", "love"]),
        (" joy ; love ;", ["joy", "love"]),
        ('["joy", "love"]', ["joy", "love"]),
        ("joy;joy", ["joy"]),
        ("", []),
        (None, []),
        ([], []),
    ],
)
def test_label_list_cells_in_every_supported_form(cell, expected):
    assert parse_label_list(cell) == expected


def test_label_list_rejects_broken_json():
    with pytest.raises(LabelError, match="JSON"):
        parse_label_list('["joy", ')


def test_label_names_are_collected_sorted():
    assert collect_label_names([["joy"], [], ["anger", "joy"]]) == ["anger", "joy"]


def test_multi_hot_follows_the_label_order():
    encoded = labels_to_multi_hot([["love", "anger"], [], ["joy"]], ["anger", "joy", "love"])
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])


def test_multi_hot_rejects_a_label_outside_the_list():
    with pytest.raises(LabelError, match="row 1: unknown label 'fear'"):
        labels_to_multi_hot([["joy"], ["fear"]], ["anger", "joy"])
