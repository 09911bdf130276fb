"""Resumable training: which checkpoint a rerun starts from, and when it starts afresh."""

import json

from mlbert.training import FINGERPRINT_FILE, last_complete_checkpoint, prepare_checkpoint_dir


def make_checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_a_fresh_run_creates_the_folder_with_its_fingerprint(tmp_path):
    folder = tmp_path / "checkpoints"
    assert prepare_checkpoint_dir(folder, "abc") is None
    assert json.loads((folder / FINGERPRINT_FILE).read_text()) == {"fingerprint": "abc"}


def test_the_same_run_resumes_from_its_newest_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    prepare_checkpoint_dir(folder, "abc")
    make_checkpoint(folder, 10)
    newest = make_checkpoint(folder, 20)
    make_checkpoint(folder, 9)
    assert prepare_checkpoint_dir(folder, "abc") == str(newest)


def test_checkpoints_of_another_run_are_discarded_not_resumed(tmp_path):
    folder = tmp_path / "checkpoints"
    prepare_checkpoint_dir(folder, "old params")
    make_checkpoint(folder, 10)
    assert prepare_checkpoint_dir(folder, "new params") is None
    assert not list(folder.glob("checkpoint-*"))


def test_a_half_written_checkpoint_is_removed_and_the_previous_one_used(tmp_path):
    previous = make_checkpoint(tmp_path, 10)
    half = make_checkpoint(tmp_path, 20, complete=False)
    assert last_complete_checkpoint(tmp_path) == str(previous)
    assert not half.exists()


def test_no_complete_checkpoint_means_start_afresh(tmp_path):
    make_checkpoint(tmp_path, 5, complete=False)
    assert last_complete_checkpoint(tmp_path) is None
