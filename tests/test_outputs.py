import json

import pytest

from mlbert.outputs import atomic_dir, atomic_file, write_json


def test_atomic_dir_replaces_the_old_folder_on_success(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


def test_atomic_dir_keeps_the_old_folder_when_the_work_fails(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_file_leaves_nothing_when_the_work_fails(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError), atomic_file(target) as staging:
        staging.write_text("{")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_write_json_writes_readable_json(tmp_path):
    write_json(tmp_path / "a" / "m.json", {"f1": 0.5, "label": "joy"})
    assert json.loads((tmp_path / "a" / "m.json").read_text()) == {"f1": 0.5, "label": "joy"}
