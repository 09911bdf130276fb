"""The bundled demo data set (GoEmotions test split, Apache-2.0): what `prepare` makes of it, and
when `prepare.source: auto` falls back to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbert.data import DEMO_NAME, dataset_card, demo_notice, load_demo, load_splits, read_demo_table, resolve_source
from mlbert.errors import DataError
from mlbert.params import params_from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO = REPO_ROOT / "data/demo/goemotions"


def test_the_demo_ships_with_its_licence_notice():
    notice = (DEMO / "README.md").read_text(encoding="utf-8")
    assert "Apache License 2.0" in notice and "Demszky" in notice


@pytest.fixture(scope="module")
def demo():
    return load_demo(DEMO, validation_fraction=0.1, test_fraction=0.2, seed=42)


def test_the_demo_is_split_into_disjoint_train_validation_and_test_of_the_asked_sizes(demo):
    sizes = {name: len(frame) for name, frame in demo.items()}
    assert sum(sizes.values()) == 5427
    assert sizes["test"] == pytest.approx(0.2 * 5427, abs=2) and sizes["validation"] == pytest.approx(0.1 * 5427, abs=2)
    ids = [set(frame["id"]) for _, frame in demo.items()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_the_demo_has_28_labels_in_the_published_order_and_every_one_in_each_split(demo):
    assert len(demo.labels) == 28 and demo.labels[0] == "admiration" and demo.labels[-1] == "neutral"
    for frame in (demo.train, demo.validation, demo.test):
        assert {name for names in frame["labels"] for name in names} == set(demo.labels)


def test_the_demo_split_is_seeded(demo):
    again = load_demo(DEMO, validation_fraction=0.1, test_fraction=0.2, seed=42)
    other = load_demo(DEMO, validation_fraction=0.1, test_fraction=0.2, seed=7)
    assert again.test["id"].tolist() == demo.test["id"].tolist()
    assert other.test["id"].tolist() != demo.test["id"].tolist()


def test_a_row_with_several_label_ids_gets_each_name(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text('so "great", thanks\t15,0\tid1\n', encoding="utf-8")
    frame = read_demo_table(path, ["admiration", *[f"l{i}" for i in range(1, 15)], "gratitude"])
    assert frame["labels"].tolist() == [["admiration", "gratitude"]] and frame["text"].tolist() == ['so "great", thanks']


@pytest.mark.parametrize(("line", "message"), [("text only\n", "line 1 is not"), ("hi\t99\tid\n", "label ids '99'")])
def test_a_damaged_demo_file_names_the_line(tmp_path, line, message):
    path = tmp_path / "test.tsv"
    path.write_text(line, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_demo_table(path, ["a", "b"])


def test_auto_without_the_semeval_files_and_without_the_hub_uses_the_demo(tmp_path, offline_hub, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the demo's path is relative to the repository root
    params = params_from_dict({"prepare": {"dir": str(tmp_path)}}).prepare
    assert resolve_source(params) == "demo"
    notice = demo_notice(params)
    assert notice.startswith("NOTICE: using the bundled demo data") and "2018-E-c-En-train.txt" in notice
    assert dataset_card("demo", params)["name"] == DEMO_NAME
    assert len(load_splits(params).labels) == 28


def test_auto_with_the_semeval_files_uses_them_not_the_demo(semeval_dir, offline_hub):
    params = params_from_dict({"prepare": {"dir": str(semeval_dir)}}).prepare
    assert resolve_source(params) == "semeval"
    assert dataset_card("semeval", params)["name"] == "semeval2018-ec"


def test_the_tfidf_baseline_chooses_c_on_validation_and_reports_test(demo, tmp_path, monkeypatch, capsys):
    import importlib.util

    from mlbert.data import cut_splits, write_splits

    write_splits(cut_splits(demo, 600, 150), tmp_path)
    spec = importlib.util.spec_from_file_location("baseline_tfidf", REPO_ROOT / "benchmarks/baseline_tfidf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(REPO_ROOT)  # the evaluate params come from params.yaml
    assert module.main(["--data", str(tmp_path), "--c", "1", "4"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 4 |"))]
    assert len(rows) == 2
    assert "chosen on validation: C " in out
    test_line = next(line for line in out.splitlines() if line.startswith("test (150 texts)"))
    scores = [float(part.split()[-1].rstrip(",")) for part in test_line.split(": ")[1].split("  (")[0].split(", ")]
    assert all(0.0 <= value <= 1.0 for value in scores)
