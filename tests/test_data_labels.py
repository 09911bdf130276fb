"""prepare reads JSONL line by line on "\\n" only, and refuses label names that the model or
predict's output cannot tell apart; a label that no training example has is a warning."""

import json

import pytest

from mlbert.data import DataError, label_warnings, load_splits
from mlbert.params import PrepareParams


def own_files(tmp_path, name, **layout) -> PrepareParams:
    return PrepareParams(source="files", dir=str(tmp_path), train_file=name, validation_file=name, test_file=name,
                         **layout)  # fmt: skip


def write_jsonl(path, records) -> None:
    # ensure_ascii=False writes U+2028, U+0085 ... raw into the JSON strings, as many tools do
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


# --- JSONL lines -----------------------------------------------------------------------------

SEPARATED_TEXT = "first\u2028second\u0085third\u2029fourth\x1cfifth"


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": SEPARATED_TEXT, "labels": ["x"]}, {"text": "plain", "labels": []}])
    assert "\u2028" in (tmp_path / "d.jsonl").read_text(encoding="utf-8")  # raw, not escaped
    splits = load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))
    assert splits.train["text"].tolist() == [SEPARATED_TEXT, "plain"]
    assert splits.train["labels"].tolist() == [["x"], []]


def test_a_bad_json_line_after_a_unicode_separator_is_named_by_its_real_line_number(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "a\u2028b\u0085c", "labels": ["x"]}])
    with (tmp_path / "d.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"text": \n')
    with pytest.raises(DataError, match="d.jsonl: line 2 is not valid JSON"):
        load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))


def test_jsonl_with_crlf_line_ends_still_loads(tmp_path):
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "a", "labels": ["x"]}\r\n\r\n{"text": "b", "labels": []}\r\n')
    splits = load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))
    assert splits.train["text"].tolist() == ["a", "b"]


# --- label names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "shown"),
    [
        (["Joy", "joy"], "'Joy' and 'joy'"),
        (["very_sad", "very sad"], "'very sad' and 'very_sad'"),  # collected in sorted order
        (["Very  Sad", "very_sad"], "'Very  Sad' and 'very_sad'"),
        (["joy", "joy\u200b"], "'joy' and 'joy\\\\u200b'"),
    ],
)
def test_label_names_that_differ_only_in_case_spacing_or_underscores_are_refused(tmp_path, names, shown):
    write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "labels": [name]} for i, name in enumerate(names)])
    with pytest.raises(DataError, match=f"d.jsonl: label names {shown} differ only in case, spacing or underscores"):
        load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))


def test_zero_one_columns_that_differ_only_in_case_are_refused(tmp_path):
    (tmp_path / "t.csv").write_text("text,Joy,joy\na,1,0\nb,0,1\n")
    with pytest.raises(DataError, match="t.csv: label names 'Joy' and 'joy' differ only in case"):
        load_splits(own_files(tmp_path, "t.csv", label_columns=["Joy", "joy"]))


def test_a_label_name_holding_the_list_separator_is_refused(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": ["happy;sad"]}, {"text": "b", "labels": ["joy"]}])
    with pytest.raises(DataError, match=r"d.jsonl: label name\(s\) 'happy;sad' contain ';', which separates"):
        load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))


def test_a_zero_one_column_named_with_the_list_separator_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text('text,"a;b",c\nx,1,0\ny,0,1\n')
    with pytest.raises(DataError, match=r"t.csv: label name\(s\) 'a;b' contain ';'"):
        load_splits(own_files(tmp_path, "t.csv", label_columns=["a;b", "c"]))


@pytest.mark.parametrize("name", ["\u200b", "\u2060\u200b", "\ufeff"])
def test_a_label_name_of_invisible_characters_is_refused(tmp_path, name):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": [name]}, {"text": "b", "labels": ["joy"]}])
    with pytest.raises(DataError, match=r"d.jsonl: label name\(s\) .* are empty or made only of invisible"):
        load_splits(own_files(tmp_path, "d.jsonl", label_column="labels"))


@pytest.mark.parametrize("name", ["\u00a0", " ", "\u3000"])
def test_a_zero_one_column_named_with_whitespace_only_is_refused(tmp_path, name):
    (tmp_path / "t.tsv").write_text(f"text\t{name}\tjoy\nx\t1\t0\ny\t0\t1\n")
    with pytest.raises(DataError, match=r"t.tsv: label name\(s\) .* are empty or made only of invisible"):
        load_splits(own_files(tmp_path, "t.tsv", label_columns=[name, "joy"]))


def test_declared_labels_that_differ_only_in_case_are_refused(tmp_path):
    (tmp_path / "t.csv").write_text("text,labels\na,Joy\nb,joy\n")
    with pytest.raises(DataError, match="t.csv: label names 'Joy' and 'joy'"):
        load_splits(own_files(tmp_path, "t.csv", label_column="labels", labels=["Joy", "joy"]))


def test_distinct_label_names_with_spaces_and_unicode_pass(tmp_path):
    names = ["very sad", "sad", "joyful", "joy", "café", "naïve"]
    write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}", "labels": [name]} for i, name in enumerate(names)])
    assert load_splits(own_files(tmp_path, "d.jsonl", label_column="labels")).labels == sorted(names)


# --- labels without a training example -------------------------------------------------------


def test_a_zero_one_column_without_a_positive_in_train_is_a_warning_naming_it(tmp_path):
    (tmp_path / "train.csv").write_text("text,joy,anger,fear\na,1,0,0\nb,0,1,0\nc,1,1,0\n")
    (tmp_path / "dev.csv").write_text("text,joy,anger,fear\nd,0,0,1\n")
    params = PrepareParams(source="files", dir=str(tmp_path), train_file="train.csv", validation_file="dev.csv",
                           test_file="dev.csv", label_columns=["joy", "anger", "fear"])  # fmt: skip
    splits = load_splits(params)
    assert splits.labels == ["joy", "anger", "fear"]  # still a label: prepare goes on
    assert splits.validation["labels"].tolist() == [["fear"]]
    (warning,) = label_warnings(splits)
    assert "label column 'fear' has no positive example in the 3 training examples" in warning


def test_a_column_that_max_train_samples_leaves_without_a_positive_is_a_warning(tmp_path):
    (tmp_path / "t.csv").write_text("text,joy,fear\na,1,0\nb,1,0\nc,0,1\n")
    splits = load_splits(own_files(tmp_path, "t.csv", label_columns=["joy", "fear"], max_train_samples=2))
    assert [w.split(" has ")[0] for w in label_warnings(splits)] == ["label column 'fear'"]


def test_labels_that_every_split_has_give_no_warning(tmp_path):
    (tmp_path / "t.csv").write_text("text,joy,fear\na,1,0\nb,0,1\n")
    assert label_warnings(load_splits(own_files(tmp_path, "t.csv", label_columns=["joy", "fear"]))) == []
