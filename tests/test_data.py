"""Every data source parses into (id, text, labels), and bad data is named by file and row."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import SEMEVAL_HEADER, semeval_like_lines, write_crlf

from mlbert.data import (
    SEMEVAL_LABELS,
    DataError,
    cut_splits,
    label_warnings,
    load_splits,
    read_semeval_file,
    read_splits,
    resolve_source,
    shared_texts,
    split_off,
    write_splits,
)
from mlbert.params import PrepareParams

# --- the official SemEval-2018 E-c files -----------------------------------------------------


def test_semeval_file_parses_crlf_rows_into_label_names(semeval_dir):
    frame = read_semeval_file(semeval_dir / "2018-E-c-En-train.txt")
    assert list(frame.columns) == ["id", "text", "labels"]
    assert len(frame) == 30
    assert frame["id"].iloc[1] == "fx-tr-0001"
    assert frame["labels"].iloc[1] == ["anticipation"]
    assert frame["labels"].iloc[3] == ["fear", "pessimism"]  # 1 at (3 % 11) and (7 % 11)
    assert frame["labels"].iloc[0] == []  # a neutral tweet has no label


def test_semeval_text_is_kept_verbatim_without_carriage_returns(semeval_dir):
    frame = read_semeval_file(semeval_dir / "2018-E-c-En-dev.txt")
    assert frame["text"].iloc[2] == "  synthetic text number 2 with a \\n literal  "
    assert not any("\r" in label for labels in frame["labels"] for label in labels)


def test_semeval_source_loads_three_splits_in_label_order(semeval_dir):
    splits = load_splits(PrepareParams(source="semeval", dir=str(semeval_dir)))
    assert splits.labels == list(SEMEVAL_LABELS)
    assert [len(frame) for _, frame in splits.items()] == [30, 12, 15]


def test_auto_source_picks_the_official_files_when_present(semeval_dir):
    assert resolve_source(PrepareParams(source="auto", dir=str(semeval_dir))) == "semeval"


def test_hub_source_offline_fails_fast_with_advice(offline_hub):
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is set.*local folder"):
        load_splits(PrepareParams(source="hub"))


def test_semeval_wrong_header_is_named(tmp_path):
    path = write_crlf(tmp_path / "x.txt", ["ID\tText\tanger", "fx-1\thello\t1"])
    with pytest.raises(DataError, match=r"x.txt: header is \['ID', 'Text', 'anger'\]"):
        read_semeval_file(path)


def test_semeval_label_other_than_zero_or_one_names_row_and_value(tmp_path):
    rows = semeval_like_lines("tr", 3)
    rows[2] = rows[2][: rows[2].rindex("\t")] + "\tNONE"
    path = write_crlf(tmp_path / "t.txt", [SEMEVAL_HEADER, *rows])
    with pytest.raises(DataError, match=r"t.txt: row 3 \(id fx-tr-0002\): expected 0 or 1, got 'NONE'"):
        read_semeval_file(path)


def test_max_samples_keep_the_first_rows(semeval_dir):
    splits = load_splits(
        PrepareParams(source="semeval", dir=str(semeval_dir), max_train_samples=5, max_eval_samples=3)
    )
    assert splits.train["id"].tolist() == [f"fx-tr-{i:04d}" for i in range(5)]
    assert len(splits.validation) == len(splits.test) == 3


def test_cut_splits_with_none_keeps_everything(semeval_dir):
    splits = load_splits(PrepareParams(source="semeval", dir=str(semeval_dir)))
    assert cut_splits(splits, None, None).train.equals(splits.train)


# --- the user's own files --------------------------------------------------------------------


def own_files(tmp_path, **overrides) -> PrepareParams:
    return PrepareParams(source="files", dir=str(tmp_path), **overrides)


def test_csv_with_zero_one_columns(tmp_path):
    (tmp_path / "train.csv").write_text('text,spam,urgent\n"hello, world",1,0\nplain,0,0\nboth,1,1\n')
    params = own_files(tmp_path, train_file="train.csv", validation_file="train.csv", test_file="train.csv",
                       label_columns=["urgent", "spam"])  # fmt: skip
    splits = load_splits(params)
    assert splits.labels == ["urgent", "spam"]
    assert splits.train["text"].tolist() == ["hello, world", "plain", "both"]
    assert splits.train["labels"].tolist() == [["spam"], [], ["urgent", "spam"]]
    assert splits.train["id"].tolist() == ["train-000001", "train-000002", "train-000003"]


def test_jsonl_with_a_list_column_and_ids(tmp_path):
    lines = [{"uid": "u1", "body": "a", "tags": ["x", "y"]}, {"uid": "u2", "body": "b", "tags": []}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    params = own_files(tmp_path, train_file="d.jsonl", validation_file="d.jsonl", test_file="d.jsonl",
                       text_column="body", id_column="uid", label_column="tags")  # fmt: skip
    splits = load_splits(params)
    assert splits.labels == ["x", "y"]
    assert splits.test[["id", "labels"]].values.tolist() == [["u1", ["x", "y"]], ["u2", []]]


def test_tsv_with_a_semicolon_separated_label_column(tmp_path):
    (tmp_path / "d.tsv").write_text("text\tlabels\none\tb;a\ntwo\t\n")
    params = own_files(tmp_path, train_file="d.tsv", validation_file="d.tsv", test_file="d.tsv",
                       label_column="labels")  # fmt: skip
    assert load_splits(params).train["labels"].tolist() == [["b", "a"], []]


def test_parquet_with_a_list_column(tmp_path):
    pd.DataFrame({"text": ["p", "q"], "labels": [["k"], ["k", "m"]]}).to_parquet(tmp_path / "d.parquet")
    params = own_files(tmp_path, train_file="d.parquet", validation_file="d.parquet", test_file="d.parquet",
                       label_column="labels")  # fmt: skip
    assert load_splits(params).validation["labels"].tolist() == [["k"], ["k", "m"]]


def test_missing_validation_and_test_are_split_off_train_with_a_seed(tmp_path):
    rows = ["text,labels"] + [f"text {i},{'rare' if i % 10 == 0 else 'common'}" for i in range(100)]
    (tmp_path / "all.csv").write_text("\n".join(rows) + "\n")
    params = own_files(tmp_path, train_file="all.csv", label_column="labels", seed=7)
    first, second = load_splits(params), load_splits(params)
    assert [len(f) for _, f in first.items()] == [70, 10, 20]
    assert first.test["id"].tolist() == second.test["id"].tolist()
    all_ids = [i for _, frame in first.items() for i in frame["id"]]
    assert len(set(all_ids)) == 100
    for frame in (first.train, first.validation, first.test):  # the rare label is stratified into every split
        assert any("rare" in labels for labels in frame["labels"])


def test_split_off_holds_out_the_asked_size_even_when_no_label_repeats():
    frame = pd.DataFrame({"id": list("abcd"), "text": list("abcd"), "labels": [["x"], ["y"], ["z"], ["w"]]})
    kept, held = split_off(frame, 0.25, 0, ["w", "x", "y", "z"])
    assert (len(kept), len(held)) == (3, 1)
    assert sorted(kept["id"].tolist() + held["id"].tolist()) == list("abcd")


def label_frequency_gap(part: pd.DataFrame, whole: pd.DataFrame, labels: list[str]) -> float:
    """The largest difference, over labels, between a label's frequency in `part` and in `whole`."""
    from mlbert.labels import labels_to_multi_hot

    return float(abs(labels_to_multi_hot(part["labels"], labels).mean(0) - labels_to_multi_hot(whole["labels"], labels).mean(0)).max())


def test_split_off_keeps_every_labels_frequency_closer_to_the_whole_than_a_random_split():
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    labels = [f"l{k}" for k in range(8)]
    rates = np.array([0.4, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01])
    rows = [[label for label, on in zip(labels, rng.uniform(size=8) < rates) if on] for _ in range(600)]
    frame = pd.DataFrame({"id": range(600), "text": [str(i) for i in range(600)], "labels": rows})
    stratified, random = [], []
    for seed in range(5):
        _, held = split_off(frame, 0.2, seed, labels)
        assert len(held) == 120
        stratified.append(label_frequency_gap(held, frame, labels))
        _, plain = train_test_split(frame, test_size=0.2, random_state=seed)
        random.append(label_frequency_gap(plain, frame, labels))
    assert max(stratified) < 0.01 < np.mean(random)  # within one point for every label, every seed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,labels\n", "no data rows"),
        ("", "the file is empty"),
        ("body,labels\nhi,a\n", r"missing column\(s\) 'text'; the file has 'body', 'labels'"),
        ("text,labels\nhi,a\n   ,b\n", r"row 2 \(id train-000002\), column 'text': text is empty"),
    ],
)
def test_bad_own_files_are_named(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    params = own_files(tmp_path, train_file="t.csv", validation_file="t.csv", test_file="t.csv",
                       label_column="labels")  # fmt: skip
    with pytest.raises(DataError, match=message):
        load_splits(params)


def test_a_missing_file_is_named(tmp_path):
    params = own_files(tmp_path, train_file="nope.csv", label_column="labels")
    with pytest.raises(DataError, match="nope.csv: file not found"):
        load_splits(params)


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"text,labels\nfine,a\ncaf\xe9,b\n")
    params = own_files(tmp_path, train_file="t.csv", label_column="labels")
    with pytest.raises(DataError, match="t.csv: line 3 is not valid UTF-8"):
        load_splits(params)


def test_duplicate_ids_are_rejected(tmp_path):
    (tmp_path / "t.csv").write_text("id,text,labels\nk1,a,x\nk1,b,x\n")
    params = own_files(tmp_path, train_file="t.csv", id_column="id", label_column="labels")
    with pytest.raises(DataError, match="duplicate id"):
        load_splits(params)


def test_a_validation_label_missing_from_the_label_set_is_named(tmp_path):
    (tmp_path / "train.csv").write_text("text,labels\na,x\nb,y\n")
    (tmp_path / "dev.csv").write_text("text,labels\nc,z\n")
    params = own_files(tmp_path, train_file="train.csv", validation_file="dev.csv", test_file="train.csv",
                       label_column="labels")  # fmt: skip
    with pytest.raises(DataError, match=r"dev.csv: row 1 \(id validation-000001\): label\(s\) z are not in"):
        load_splits(params)


def test_bad_json_line_is_named(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a", "labels": []}\n{"text": \n')
    params = own_files(tmp_path, train_file="d.jsonl", label_column="labels")
    with pytest.raises(DataError, match="d.jsonl: line 2 is not valid JSON"):
        load_splits(params)


def test_a_json_line_that_gives_a_key_twice_is_refused_naming_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a", "labels": []}\n\n{"text": "b", "labels": ["x"], "labels": []}\n')
    params = own_files(tmp_path, train_file="d.jsonl", label_column="labels")
    with pytest.raises(DataError, match="d.jsonl: line 3 gives 'labels' twice"):
        load_splits(params)


# --- the normalised output -------------------------------------------------------------------


def test_written_splits_read_back_identically(semeval_dir, tmp_path):
    splits = load_splits(PrepareParams(source="semeval", dir=str(semeval_dir)))
    out = tmp_path / "prepared"
    out.mkdir()
    write_splits(splits, out)
    again = read_splits(out)
    assert again.labels == splits.labels
    for (_, before), (_, after) in zip(splits.items(), again.items()):
        assert before.to_dict("records") == after.to_dict("records")


# --- the label list and overlaps -------------------------------------------------------------


def test_a_label_list_param_reorders_the_labels(semeval_dir):
    reordered = sorted(SEMEVAL_LABELS, reverse=True)
    splits = load_splits(PrepareParams(source="semeval", dir=str(semeval_dir), labels=reordered))
    assert splits.labels == reordered


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["anger", "joy"], "the data also has anticipation"),
        ([*SEMEVAL_LABELS, "boredom"], "the data has no boredom"),
        ([*SEMEVAL_LABELS, "joy"], "lists a label twice"),
    ],
)
def test_a_label_list_that_does_not_match_the_data_is_rejected(semeval_dir, labels, message):
    with pytest.raises(DataError, match=f"prepare.labels does not match the data: .*{message}"):
        load_splits(PrepareParams(source="semeval", dir=str(semeval_dir), labels=labels))


def test_a_declared_label_that_no_training_example_has_is_rejected(tmp_path):
    (tmp_path / "t.csv").write_text("text,labels\na,x\nb,x;y\n")
    params = own_files(tmp_path, train_file="t.csv", validation_file="t.csv", test_file="t.csv",
                       label_column="labels", labels=["x", "y", "z"])  # fmt: skip
    with pytest.raises(DataError, match="no training example has z"):
        load_splits(params)


def test_texts_shared_between_train_and_test_are_counted_ignoring_case_and_spacing(tmp_path):
    (tmp_path / "train.csv").write_text("text,labels\nHello  World,x\nonly train,x\n")
    (tmp_path / "test.csv").write_text("text,labels\nhello world,x\nonly test,x\n")
    params = own_files(tmp_path, train_file="train.csv", validation_file="train.csv", test_file="test.csv",
                       label_column="labels")  # fmt: skip
    assert shared_texts(load_splits(params)) == {"validation": 2, "test": 1}


def test_one_label_is_a_yes_no_task_whose_held_out_parts_keep_its_rate(tmp_path):
    rows = "".join(f"text {i},{int(i % 4 == 0)}\n" for i in range(40))  # 10 of 40 say yes
    (tmp_path / "train.csv").write_text("text,spam\n" + rows)
    splits = load_splits(own_files(tmp_path, train_file="train.csv", label_columns=["spam"]))
    assert splits.labels == ["spam"] and (len(splits.train), len(splits.validation), len(splits.test)) == (28, 4, 8)
    for frame in (splits.train, splits.validation, splits.test):
        assert sum(labels == ["spam"] for labels in frame["labels"]) == len(frame) // 4


@pytest.mark.parametrize(
    ("rows", "fractions", "message"),
    [
        (2, {}, "2 row(s) cannot be split by prepare.validation_fraction 0.1 and prepare.test_fraction 0.2: that leaves 0 to train on"),
        (10, {"validation_fraction": 0.49, "test_fraction": 0.49}, "leaves 0 to train on (test 5, validation 5)"),
    ],
)
def test_fractions_that_leave_nothing_to_train_on_are_named(tmp_path, rows, fractions, message):
    (tmp_path / "train.csv").write_text("text,a,b\n" + "".join(f"t{i},1,{i % 2}\n" for i in range(rows)))
    with pytest.raises(DataError, match=re.escape(message)):
        load_splits(own_files(tmp_path, train_file="train.csv", label_columns=["a", "b"], **fractions))


@pytest.mark.parametrize(
    ("record", "problem"),
    [('{"text": 42, "labels": "a"}', "not text but int 42"),
     ('{"text": null, "labels": "a"}', "text is missing"),
     ('{"text": "\\u00a0\\u200b", "labels": "a"}', "text is made only of invisible characters")],
)  # fmt: skip
def test_a_text_cell_that_is_not_a_text_says_what_it_is(tmp_path, record, problem):
    (tmp_path / "train.jsonl").write_text('{"text": "fine", "labels": "a;b"}\n' + record + "\n")
    params = own_files(tmp_path, train_file="train.jsonl", validation_file="train.jsonl", test_file="train.jsonl",
                       label_column="labels")  # fmt: skip
    with pytest.raises(DataError, match=re.escape(f"row 2 (id train-000002), column 'text': {problem}")):
        load_splits(params)


def test_a_label_column_named_twice_is_refused(tmp_path):
    (tmp_path / "train.csv").write_text("text,joy,anger\nhi,1,0\n")
    params = own_files(tmp_path, train_file="train.csv", validation_file="train.csv", test_file="train.csv",
                       label_columns=["joy", "joy", "anger"])  # fmt: skip
    with pytest.raises(DataError, match="prepare.label_columns names 'joy' more than once"):
        load_splits(params)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_header_that_names_a_column_twice_is_refused_not_renamed(tmp_path, suffix):
    sep = "," if suffix == ".csv" else "\t"
    (tmp_path / f"train{suffix}").write_text(sep.join(["text", "joy", "anger", "joy"]) + "\n" + sep.join(["hi", "1", "0", "0"]) + "\n")
    params = own_files(tmp_path, train_file=f"train{suffix}", validation_file=f"train{suffix}", test_file=f"train{suffix}",
                       label_columns=["joy", "anger"])  # fmt: skip
    with pytest.raises(DataError, match=re.escape(f"train{suffix}: the header names column 'joy' twice (columns 2 and 4)")):
        load_splits(params)


def test_unnamed_header_cells_may_repeat(tmp_path):
    (tmp_path / "train.csv").write_text("text,joy,,\nhi,1,,\nho,0,,\n")  # trailing commas: two unnamed columns
    params = own_files(tmp_path, train_file="train.csv", validation_file="train.csv", test_file="train.csv",
                       label_columns=["joy"])  # fmt: skip
    assert load_splits(params).train["labels"].tolist() == [["joy"], []]


@pytest.mark.parametrize(("name", "message"), [("train.xlsx", "unknown file type '.xlsx'"), ("folder", "is a folder")])
def test_a_train_file_of_an_unknown_type_or_a_folder_is_named_as_such(tmp_path, name, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "train.xlsx").write_bytes(b"PK\x03\x04 not a table")
    with pytest.raises(DataError, match=re.escape(message)):
        load_splits(own_files(tmp_path, train_file=name, label_column="labels"))


def test_labels_joined_by_a_comma_get_a_warning(tmp_path):
    (tmp_path / "train.csv").write_text('text,labels\nhi,"anger,joy"\nho,joy\nha,anger\n')
    params = own_files(tmp_path, train_file="train.csv", validation_file="train.csv", test_file="train.csv",
                       label_column="labels")  # fmt: skip
    warnings = label_warnings(load_splits(params))
    assert len(warnings) == 1 and "label 'anger,joy' looks like several labels joined by ','" in warnings[0]
