"""`predict` end to end on a tiny randomly initialised BERT folder (seconds): output written whole
or not at all, CSV escaping, stdin lines, and a damaged model folder named in one line."""

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_models import write_tiny_classifier_folder

from mlbert import cli

PREDICT = str(Path(sys.executable).parent / "predict")
LABELS = ["anger", "joy"]
TEXTS = ["so happy today", "this is awful", "meh", "what a day"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    """A trained-model folder as `load()` reads it: config, safetensors weights, tokenizer, thresholds."""
    return write_tiny_classifier_folder(tmp_path_factory.mktemp("model") / "export", tokenizer, LABELS)


@pytest.fixture
def damaged(model_dir, tmp_path):
    """A copy of the model folder, to break."""
    return Path(shutil.copytree(model_dir, tmp_path / "damaged"))


def run(*args, stdin=b""):
    return subprocess.run([PREDICT, *map(str, args)], input=stdin, capture_output=True, timeout=300, check=False)


def one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("predict: error: ") and "Traceback" not in err, err
    return err


def test_stdin_is_split_at_newlines_only(model_dir):
    result = run("--model", model_dir, stdin="a\u2028b\x0cc\u0085d\r\nsecond\n".encode("utf-8"))
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["text"] for line in result.stdout.decode("utf-8").split("\n")[:-1]] == [
        "a\u2028b\x0cc\u0085d",
        "second",
    ]


def test_a_truncated_model_safetensors_is_one_line_naming_the_file(damaged):
    weights = damaged / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    result = run("--model", damaged, "--backend", "torch", "a text")
    assert result.returncode == 1 and result.stdout == b""
    assert f"{weights} cannot be loaded" in one_line_error(result.stderr.decode())


def test_a_damaged_onnx_graph_is_one_line_naming_the_file(damaged, capsys):
    graph = damaged / "model.onnx"  # the default backend once it is there
    graph.write_bytes((damaged / "model.safetensors").read_bytes()[:1000])
    assert cli.main(["--model", str(damaged), "a text"]) == 1
    assert f"{graph} cannot be loaded" in one_line_error(capsys.readouterr().err)


def test_a_bad_thresholds_json_is_one_line_naming_the_file(damaged, capsys):
    (damaged / "thresholds.json").write_text('{"default": 0.5, "per_label": {"joy":', encoding="utf-8")
    assert cli.main(["--model", str(damaged), "--backend", "torch", "a text"]) == 1
    assert f"{damaged / 'thresholds.json'} is not a thresholds file" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(("flags", "cell"), [([], "'=HYPERLINK(\"x\")"), (["--no-csv-escape"], '=HYPERLINK("x")')])
def test_csv_output_escapes_formulas_unless_told_not_to(model_dir, tmp_path, flags, cell):
    output = tmp_path / "out.csv"
    argv = ["--model", str(model_dir), "--format", "csv", "--output", str(output), *flags, '=HYPERLINK("x")', "fine"]
    assert cli.main(argv) == 0
    with output.open(encoding="utf-8", newline="") as handle:
        assert [row["text"] for row in csv.DictReader(handle)] == [cell, "fine"]


def test_the_output_replaces_the_old_one_whole_and_nothing_else_is_left(model_dir, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "predictions.jsonl"
    output.write_text("old\n", encoding="utf-8")
    output.chmod(0o640)
    assert cli.main(["--model", str(model_dir), "--output", str(output), *TEXTS]) == 0
    assert [json.loads(line)["text"] for line in output.read_text(encoding="utf-8").splitlines()] == TEXTS
    assert [path.name for path in folder.iterdir()] == ["predictions.jsonl"]
    assert stat.S_IMODE(output.stat().st_mode) == 0o640  # the permissions of the file it replaced


@pytest.mark.parametrize("before", [None, "old predictions\n"])
def test_a_failure_mid_write_leaves_no_temp_file_and_no_partial_output(model_dir, tmp_path, monkeypatch, before):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "predictions.jsonl"
    if before is not None:
        output.write_text(before, encoding="utf-8")
    format_results = cli.format_results

    def fails_on_the_third_text(*args, **kwargs):
        for number, line in enumerate(format_results(*args, **kwargs), start=1):
            if number == 3:
                raise RuntimeError("failed on the third text")
            yield line

    monkeypatch.setattr(cli, "format_results", fails_on_the_third_text)
    with pytest.raises(RuntimeError, match="third text"):
        cli.main(["--model", str(model_dir), "--output", str(output), *TEXTS])
    if before is None:
        assert list(folder.iterdir()) == []
    else:
        assert list(folder.iterdir()) == [output] and output.read_text(encoding="utf-8") == before


def test_an_output_that_is_a_pipe_is_written_in_place(model_dir, tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = subprocess.Popen(["cat", str(pipe)], stdout=subprocess.PIPE)
    try:
        assert cli.main(["--model", str(model_dir), "--output", str(pipe), *TEXTS]) == 0
        received, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert [json.loads(line)["text"] for line in received.decode("utf-8").splitlines()] == TEXTS
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def peak_rss_mb(*argv: str) -> float:
    """Run `predict` in a fresh interpreter and return its peak resident memory in MB."""
    script = (
        "import resource, sys\n"
        "from mlbert.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return float(result.stderr.strip().splitlines()[-1])


def test_a_large_file_is_labelled_in_bounded_memory(model_dir, tmp_path):
    """Reading the larger file whole (texts, encodings, one result dict per text, output lines)
    costs about 170 MB more than the smaller one (measured); streamed in chunks, the two peak alike."""
    line = "a text of about sixty characters, {} words and a number {}\n"
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text("".join(line.format("some", i) for i in range(5_000)), encoding="utf-8")
    large.write_text("".join(line.format("many", i) for i in range(40_000)), encoding="utf-8")
    outputs = {path: tmp_path / f"{path.stem}.jsonl" for path in (small, large)}
    peaks = {
        path: peak_rss_mb("--model", str(model_dir), "--file", str(path), "--output", str(out), "--threads", "1")
        for path, out in outputs.items()
    }
    assert sum(1 for _ in outputs[large].open(encoding="utf-8")) == 40_000
    assert peaks[large] - peaks[small] < 40, peaks


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_a_file_longer_than_a_chunk_comes_out_whole_and_in_order(model_dir, tmp_path, suffix, monkeypatch):
    import pandas as pd

    from mlbert import text_files

    monkeypatch.setattr(text_files, "CHUNK_TEXTS", 7)  # many chunks from a small file
    texts = [f"text {i}, with a comma" for i in range(40)]
    path = tmp_path / f"in{suffix}"
    frame = pd.DataFrame({"id": range(40), "text": texts})
    if suffix == ".txt":
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, row_group_size=5)
    output = tmp_path / "out.csv"
    assert cli.main(["--model", str(model_dir), "--file", str(path), "--format", "csv", "--output", str(output)]) == 0
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))  # one header, then every text once
    assert [row["text"] for row in rows] == texts


def test_a_bad_row_late_in_a_file_stops_the_command_before_any_output(model_dir, tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text("text\n" + "fine\n" * 10_000 + '""\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert cli.main(["--model", str(model_dir), "--file", str(path), "--output", str(output)]) == 1
    assert "row 10001 of column 'text' has no text" in capsys.readouterr().err
    assert not output.exists() and list(tmp_path.iterdir()) == [path]


def test_a_folder_without_its_tokenizer_file_is_refused_not_labelled_as_unknown_words(damaged, capsys):
    # Without tokenizer.json transformers builds a tokenizer of a few special tokens, every word
    # would become [UNK], and the labels would be wrong without a word said.
    (damaged / "tokenizer.json").unlink()
    assert cli.main(["--model", str(damaged), "--backend", "torch", "a text"]) == 1
    assert "the tokenizer has" in one_line_error(capsys.readouterr().err)


def test_thresholds_for_labels_the_model_does_not_have_are_refused(damaged, capsys):
    (damaged / "thresholds.json").write_text('{"default": 0.5, "per_label": {"surprise": 0.1}}', encoding="utf-8")
    assert cli.main(["--model", str(damaged), "--backend", "torch", "a text"]) == 1
    assert "per_label names label(s) ['surprise'] that the model does not have" in one_line_error(capsys.readouterr().err)


def test_more_threads_than_cores_are_capped_with_a_warning(model_dir):
    from mlbert.devices import available_cores
    from mlbert.prediction import load

    with pytest.warns(UserWarning, match=f"threads=100000 is more than the {available_cores()} cores"):
        classifier = load(model_dir, backend="onnx" if (model_dir / "model.onnx").exists() else "torch", threads=100_000)
    assert len(classifier.predict(TEXTS)) == len(TEXTS)


def many_texts(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"text number {i}, what a day\n" for i in range(count)), encoding="utf-8")
    return path


def test_a_reader_that_stops_early_ends_the_command_quietly(model_dir, tmp_path):
    # `predict --file big.txt | head -1`: no traceback when head closes the pipe.
    process = subprocess.Popen(
        [PREDICT, "--model", str(model_dir), "--file", str(many_texts(tmp_path, 5000))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141 and json.loads(first)["text"] == "text number 0, what a day"
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_killed_run_leaves_the_old_output_and_no_staging_file(model_dir, tmp_path, sent, code):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "predictions.jsonl"
    output.write_text("old\n", encoding="utf-8")
    process = subprocess.Popen(
        [PREDICT, "--model", str(model_dir), "--file", str(many_texts(tmp_path, 400_000)), "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:  # the staging file is being written
        time.sleep(0.1)
    process.send_signal(sent)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code and "Traceback" not in err.decode(), err.decode()
    assert list(folder.iterdir()) == [output] and output.read_text(encoding="utf-8") == "old\n"
