"""`--backend auto`: the fastest backend on this machine, by timing, remembered per machine and folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlbert.backend_choice import (
    CACHE_FILE,
    PROBE_BATCH,
    Runner,
    cache_key,
    cached_choice,
    choose_fastest,
    describe,
    remember_choice,
    time_backends,
)

FILES = {"onnx-int8": "model.int8.onnx", "torch": "model.safetensors"}


def test_the_fastest_backend_wins():
    assert choose_fastest({"torch": 100, "onnx": 130, "onnx-int8": 250, "openvino-int8": 120}) == "onnx-int8"
    assert choose_fastest({"torch": 100, "onnx": 130, "openvino-int8": 300}) == "openvino-int8"


def test_an_int8_backend_must_beat_the_fastest_exact_one_clearly():
    # Within 10%, the exact backend's answers are worth more than the int8 one's speed.
    assert choose_fastest({"torch": 100, "onnx": 130, "onnx-int8": 140}) == "onnx"
    assert choose_fastest({"torch": 100, "onnx-int8": 111}) == "onnx-int8"
    assert choose_fastest({"torch": 100, "onnx-int8": 109}) == "torch"


def test_without_an_exact_backend_the_fastest_int8_one_wins():
    assert choose_fastest({"onnx-int8": 200, "openvino-int8": 190}) == "onnx-int8"


def test_nothing_timed_is_an_error():
    with pytest.raises(ValueError, match="no backend was timed"):
        choose_fastest({})


def test_every_backend_is_timed_on_the_same_batch(tokenizer):
    seen = []

    def forward(batch):
        seen.append({name: values.shape for name, values in batch.items()})
        return np.zeros((len(batch["input_ids"]), 3), dtype=np.float32)

    speeds = time_backends({"a": Runner(forward), "b": Runner(forward)}, tokenizer, rounds=2)
    assert set(speeds) == {"a", "b"} and all(speed > 0 for speed in speeds.values())
    assert len(seen) == 2 * (1 + 2)  # one warm-up and two timed calls each
    assert all(shape["input_ids"][0] == PROBE_BATCH and shape == seen[0] for shape in seen)


def test_a_backend_with_streams_is_timed_with_that_many_batches_at_once(tokenizer):
    import threading
    import time

    lock, running, most, calls = threading.Lock(), [0], [0], []

    def forward(batch):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            calls.append(1)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return np.zeros((len(batch["input_ids"]), 3), dtype=np.float32)

    speeds = time_backends({"streams": Runner(forward, batches_at_once=2)}, tokenizer, rounds=2)
    assert most[0] == 2 and len(calls) == 2 * (1 + 2)
    # Two batches in about the time of one: the speed counts both.
    assert speeds["streams"] > PROBE_BATCH / 0.02


def model_files(folder):
    folder.mkdir()
    for name in FILES.values():
        (folder / name).write_bytes(b"weights")
    return folder


def test_the_cache_key_changes_with_the_files_and_the_thread_settings(tmp_path):
    folder = model_files(tmp_path / "export")
    key = cache_key(folder, FILES, threads=None, concurrency=1)
    assert cache_key(folder, FILES, threads=None, concurrency=1) == key
    assert cache_key(folder, FILES, threads=1, concurrency=1) != key
    assert cache_key(folder, FILES, threads=None, concurrency=2) != key
    assert cache_key(folder, {"torch": FILES["torch"]}, threads=None, concurrency=1) != key
    (folder / FILES["onnx-int8"]).write_bytes(b"re-exported")  # a new export: measured again
    assert cache_key(folder, FILES, threads=None, concurrency=1) != key


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2+ CPUs and affinity")
def test_the_cache_key_counts_the_cores_this_process_may_use(tmp_path):
    # Under a taskset (or a container's CPU share) the timings differ from the whole machine's,
    # so a choice measured on all cores is not reused on one.
    folder = model_files(tmp_path / "export")
    cores = os.sched_getaffinity(0)
    key = cache_key(folder, FILES, threads=None, concurrency=1)
    try:
        os.sched_setaffinity(0, {min(cores)})
        assert cache_key(folder, FILES, threads=None, concurrency=1) != key
    finally:
        os.sched_setaffinity(0, cores)
    assert cache_key(folder, FILES, threads=None, concurrency=1) == key


def test_a_remembered_choice_is_found_under_its_key_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path / "cache"))
    assert cached_choice("k1") is None
    path = remember_choice("k1", tmp_path, "onnx-int8", {"onnx-int8": 250.0, "torch": 100.0})
    remember_choice("k2", tmp_path, "torch", {"torch": 100.0})
    assert path == tmp_path / "cache" / CACHE_FILE
    assert cached_choice("k1")["backend"] == "onnx-int8" and cached_choice("k1")["texts_per_s"]["torch"] == 100.0
    assert cached_choice("k2")["backend"] == "torch" and cached_choice("k3") is None
    assert not [name for name in os.listdir(path.parent) if name != CACHE_FILE]  # no staging file left


def test_a_damaged_cache_is_measured_again_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBERT_CACHE_DIR", str(tmp_path))
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert cached_choice("k1") is None
    remember_choice("k1", tmp_path, "torch", {"torch": 100.0})
    assert json.loads((tmp_path / CACHE_FILE).read_text())["k1"]["backend"] == "torch"


def test_an_unwritable_cache_warns_and_the_choice_still_holds(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLBERT_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot exist
    with pytest.warns(UserWarning, match="cannot write the cache"):
        assert remember_choice("k1", tmp_path, "torch", {"torch": 100.0}) is None


def test_the_report_names_the_choice_and_every_speed_fastest_first():
    line = describe({"torch": 97.3, "onnx-int8": 236.0}, "onnx-int8", cached=False)
    assert line == "backend auto: onnx-int8 (timed now, texts/s at batch 32 on this machine: onnx-int8 236, torch 97)"
