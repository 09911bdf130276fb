"""`predict`'s input readers, output formats and input errors (no model needed)."""

import json

import pandas as pd
import pytest

from mlbert.predict import InputError, format_results, main, read_file

TEXTS = ["first text", "second, with a comma", "third \"quoted\""]


@pytest.fixture
def table(tmp_path):
    return pd.DataFrame({"id": [1, 2, 3], "tweet": TEXTS})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_tables_give_their_named_text_column(tmp_path, table, suffix):
    path = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True)
    else:
        table.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    assert read_file(path, "tweet") == TEXTS


def test_text_files_give_their_non_blank_lines(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("one\n\n  \ntwo\n", encoding="utf-8")
    assert read_file(path, "text") == ["one", "two"]


def test_a_missing_column_is_named_with_the_columns_there(tmp_path, table):
    path = tmp_path / "in.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"no column 'text' \(columns: id, tweet\); name the text column with --text-column"):
        read_file(path, "text")


def test_an_empty_cell_is_named_by_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,x\nfine,1\n,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 2 of column 'text' has no text"):
        read_file(path, "text")


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_undecodable_bytes_are_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(b"text\nok\n\xff\xfe broken\n")
    with pytest.raises(InputError, match="not valid UTF-8"):
        read_file(path, "text")


def test_an_empty_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="the file is empty"):
        read_file(path, "text")


def test_an_unknown_file_type_is_named(tmp_path):
    path = tmp_path / "in.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown file type '.xlsx'"):
        read_file(path, "text")


def test_the_command_fails_with_one_line_and_exit_1_before_loading_a_model(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n", encoding="utf-8")
    assert main(["--file", str(path), "--model", str(tmp_path / "nowhere")]) == 1
    assert "predict: error: no texts to label" in capsys.readouterr().err


RESULTS = [{"labels": ["a"], "scores": {"a": 0.9, "b": 0.1}}, {"labels": [], "scores": {"a": 0.2, "b": 0.3}}]


def test_jsonl_output_has_one_object_per_text():
    lines = "".join(format_results(["x", "y"], RESULTS, ["a", "b"], "jsonl")).splitlines()
    assert [json.loads(line)["labels"] for line in lines] == [["a"], []]


def test_csv_output_has_labels_and_one_probability_column_per_label(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("".join(format_results(["x, with comma", "y"], RESULTS, ["a", "b"], "csv")), encoding="utf-8")
    frame = pd.read_csv(path, keep_default_na=False)
    assert list(frame.columns) == ["text", "labels", "a", "b"]
    assert frame["text"].tolist() == ["x, with comma", "y"] and frame["labels"].tolist() == ["a", ""]
    assert frame["b"].tolist() == [0.1, 0.3]
