"""Fuzzing the parsers: whatever the bytes, the result is data or a DataError/LabelError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbert.data import DataError, load_splits
from mlbert.labels import LabelError, parse_indicator, parse_label_list
from mlbert.params import PrepareParams

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.text(), st.lists(st.text()), st.none(), st.integers()))
def test_label_list_cells_parse_or_raise_label_error(cell):
    try:
        names = parse_label_list(cell)
    except LabelError:
        return
    assert all(isinstance(name, str) and name.strip() == name and name for name in names)
    assert len(names) == len(set(names))


@FUZZ
@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans()))
def test_indicator_cells_parse_or_raise_label_error(cell):
    try:
        assert parse_indicator(cell) in (True, False)
    except LabelError:
        pass


def load_bytes(content: bytes, suffix: str, **label_layout) -> None:
    with tempfile.TemporaryDirectory() as folder:
        name = f"data{suffix}"
        Path(folder, name).write_bytes(content)
        params = PrepareParams(source="files", dir=folder, train_file=name, validation_file=name,
                               test_file=name, **label_layout)  # fmt: skip
        try:
            splits = load_splits(params)
        except DataError:
            return
        for frame in (splits.train, splits.validation, splits.test):
            assert list(frame.columns) == ["id", "text", "labels"]
            assert all(text.strip() for text in frame["text"])


header_then_rows = st.builds(
    lambda rows: ("text,labels\n" + "\n".join(rows)).encode("utf-8", "surrogatepass"),
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30), max_size=8),
)


@FUZZ
@given(st.one_of(st.binary(max_size=200), header_then_rows))
def test_csv_files_load_or_raise_data_error(content):
    load_bytes(content, ".csv", label_column="labels")


@FUZZ
@given(st.one_of(st.binary(max_size=200), header_then_rows.map(lambda b: b.replace(b",", b"\t"))))
def test_tsv_files_with_zero_one_columns_load_or_raise_data_error(content):
    load_bytes(content, ".tsv", label_columns=["labels"])


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
json_lines = st.lists(
    st.one_of(st.dictionaries(st.sampled_from(["text", "labels", "other"]), json_values, max_size=3), json_values),
    max_size=6,
).map(lambda records: "\n".join(json.dumps(r) for r in records).encode())


@FUZZ
@given(st.one_of(st.binary(max_size=200), json_lines))
def test_jsonl_files_load_or_raise_data_error(content):
    load_bytes(content, ".jsonl", label_column="labels")
