"""`predict`'s input readers, output formats, and the errors it gives before any model is loaded."""

import csv
import io
import json
import os

import pandas as pd
import pytest

from mlbert.cli import format_results, main, parse_args, read_file, read_texts
from mlbert.errors import InputError

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
    elif suffix == ".tsv":  # tab-separated with no quoting, as the SemEval files are
        path.write_text("".join(f"{i}\t{text}\n" for i, text in [("id", "tweet"), *enumerate(TEXTS, 1)]), encoding="utf-8")
    else:
        table.to_csv(path, index=False)
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


NOWHERE = "no-such-model-folder"  # every error below must come before a model is needed


def fails_with(capsys, argv, message):
    """`main(argv)` exits 1 with one line, `predict: error: ...message...`, on stderr."""
    assert main([*argv, "--model", NOWHERE]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("predict: error: ") and message in err, err
    return err


def test_text_files_are_split_at_newlines_only(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("a\u2028b\x0cc\u0085d\nsecond", encoding="utf-8")
    assert read_file(path, "text") == ["a\u2028b\x0cc\u0085d", "second"]


def test_a_carriage_return_before_a_newline_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"one\r\ntwo\rstill two\r\n")
    assert read_file(path, "text") == ["one", "two\rstill two"]


@pytest.mark.parametrize("suffix", [".txt", ""])
def test_a_text_column_for_a_one_text_per_line_file_is_an_error_that_suggests_tsv(tmp_path, capsys, suffix):
    path = tmp_path / f"2018-E-c-En-dev{suffix}"  # the official files: tab-separated .txt with a header
    path.write_text("ID\tTweet\tanger\n2018-En-1\tso angry\t1\n", encoding="utf-8")
    err = fails_with(
        capsys, ["--file", str(path), "--text-column", "Tweet"], "is read as one text per line, header included"
    )
    assert "--text-column 'Tweet'" in err and "rename it to .tsv" in err


def test_a_text_column_for_stdin_is_an_error(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ID\tTweet\n1\thi\n")))
    fails_with(capsys, ["--text-column", "Tweet"], "--text-column names a column of a table --file; stdin is read")


def test_a_table_without_text_column_reads_the_column_named_text(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": TEXTS}).to_csv(path, index=False)
    assert read_texts(parse_args(["--file", str(path)])) == TEXTS


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_text(tmp_path, suffix):
    path = tmp_path / f"in{suffix}"
    body = {
        ".txt": "first text\nsecond\n",
        ".csv": "text,id\nfirst text,1\nsecond,2\n",
        ".tsv": "text\tid\nfirst text\t1\nsecond\t2\n",
        ".jsonl": '{"text": "first text"}\n{"text": "second"}\n',
    }[suffix]
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    assert read_file(path, "text") == ["first text", "second"]


def test_a_lone_surrogate_in_a_jsonl_text_is_a_clear_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "half an emoji \\ud83d"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"in.jsonl: line 2 of column 'text' holds '\\ud83d', half of a surrogate pair"):
        read_file(path, "text")


def test_a_bad_jsonl_record_is_named_by_its_line_in_the_file_blank_lines_included(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\n\n\n{"text": ""}\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 4 of column 'text' has no text"):
        read_file(path, "text")


@pytest.mark.parametrize(("text", "problem"), [("", "empty"), (" \t", "blank")])
def test_an_empty_or_blank_text_argument_is_named_by_its_position(capsys, text, problem):
    fails_with(capsys, ["fine", text, "also fine"], f"text argument 2 is {problem}")


def test_an_argument_that_was_not_utf8_is_named_with_its_byte_offset(capsys):
    # What Python puts in sys.argv for the bytes b"caf\xe9" (PEP 383); test_predict_cli_process runs it for real.
    fails_with(capsys, ["fine", "caf\udce9"], "text argument 2 is not valid UTF-8 (byte 3)")


def test_csv_output_escapes_cells_a_spreadsheet_would_run_as_formulas():
    texts = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b", "'quoted"]
    results = [RESULTS[1]] * len(texts)
    rows = list(csv.reader(io.StringIO("".join(format_results(texts, results, ["a", "b"], "csv")), newline="")))
    assert [row[0] for row in rows[1:]] == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "a=b", "'quoted"]


def test_csv_output_quotes_a_carriage_return_inside_a_text_and_ends_rows_in_newline():
    output = "".join(format_results(["one\rtwo", "three"], RESULTS, ["a", "b"], "csv"))
    assert output.count("\n") == 3 and '"one\rtwo"' in output
    assert [row[0] for row in csv.reader(io.StringIO(output, newline=""))] == ["text", "one\rtwo", "three"]


def test_csv_output_keeps_cells_as_they_are_when_escaping_is_off():
    texts = ["=1+1", "-1"]
    output = "".join(format_results(texts, RESULTS, ["a", "b"], "csv", csv_escape=False))
    assert [row[0] for row in csv.reader(io.StringIO(output))][1:] == texts


def test_jsonl_output_keeps_texts_as_they_are():
    lines = "".join(format_results(["=1+1", "@x"], RESULTS, ["a", "b"], "jsonl")).splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["=1+1", "@x"]


@pytest.mark.parametrize("link", ["same path", "hard link", "symlink"])
def test_an_output_that_is_the_input_file_is_refused_and_the_input_left_untouched(tmp_path, capsys, link):
    path = tmp_path / "in.txt"
    path.write_text("keep me\n", encoding="utf-8")
    output = tmp_path / "." / "in.txt" if link == "same path" else tmp_path / "alias"
    if link == "hard link":
        os.link(path, output)
    elif link == "symlink":
        output.symlink_to(path)
    fails_with(capsys, ["--file", str(path), "--output", str(output)], "is the --file being read")
    assert path.read_text(encoding="utf-8") == "keep me\n"


def test_a_missing_output_folder_fails_before_the_model_is_loaded(tmp_path, capsys):
    output = tmp_path / "missing" / "out.jsonl"
    err = fails_with(capsys, ["a text", "--output", str(output)], f"--output {output}: the folder ")
    assert err.endswith("missing does not exist\n") and NOWHERE not in err and not output.parent.exists()


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys):
    fails_with(capsys, ["a text", "--output", str(tmp_path)], f"--output {tmp_path} is a folder")


def test_a_model_error_that_names_no_file_keeps_its_traceback(monkeypatch):
    def load(*args, **kwargs):
        raise OSError("something went wrong")

    monkeypatch.setattr("mlbert.cli.load", load)
    with pytest.raises(OSError, match="something went wrong"):
        main(["a text"])


def test_the_backend_defaults_to_auto_the_fastest_the_folder_has(tmp_path):
    from mlbert.prediction import available_backends

    assert parse_args(["a text"]).backend == "auto"
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "model.int8.onnx").write_bytes(b"")
    assert available_backends(tmp_path)[0] == "onnx-int8"  # what auto loads


def test_a_csv_row_with_a_stray_delimiter_is_an_error_not_a_shifted_text(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,fine\n2,wor,ld\n", encoding="utf-8")
    with pytest.raises(InputError, match="in.csv: .*Expected 2 fields in line 3, saw 3"):
        read_file(path, "text")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], "jsonl"), (["--output", "o.csv"], "csv"), (["--output", "o.JSONL"], "jsonl"), (["--output", "o.txt"], "jsonl"),
     (["--format", "csv", "--output", "o.txt"], "csv"), (["--format", "csv"], "csv")],
)  # fmt: skip
def test_the_output_format_follows_the_output_suffix_unless_named(flags, expected):
    assert parse_args(["a text", *flags]).format == expected


def test_a_format_that_contradicts_the_output_suffix_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(["a text", "--format", "csv", "--output", "o.jsonl"])
    assert stopped.value.code == 2 and "--format csv but --output o.jsonl names jsonl" in capsys.readouterr().err


def test_a_file_that_is_a_folder_or_a_pipe_is_named_as_such(tmp_path, capsys):
    fails_with(capsys, ["--file", str(tmp_path)], f"--file {tmp_path}: is a folder; name a file")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    fails_with(capsys, ["--file", str(pipe)], f"--file {pipe}: is not a regular file")
