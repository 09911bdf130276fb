"""`predict` run as the installed command on bytes a test cannot pass through main(): what the
shell hands over is not UTF-8. Both fail before a model is needed."""

import subprocess
import sys
from pathlib import Path

PREDICT = str(Path(sys.executable).parent / "predict")


def run(*args, stdin=b""):
    argv = [PREDICT, *args, "--model", "no-such-model-folder"]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=120, check=False)


def one_line_error(result):
    err = result.stderr.decode("utf-8")
    assert result.returncode == 1 and result.stdout == b"", err
    assert err.count("\n") == 1 and err.startswith("predict: error: "), err
    return err


def test_stdin_that_is_not_utf8_is_named_with_its_byte_offset():
    result = run(stdin=b"fine\nnot \xff fine\n")
    assert "stdin: not valid UTF-8 (byte 9: invalid start byte)" in one_line_error(result)


def test_an_argument_that_is_not_utf8_is_named_with_its_position_and_byte_offset():
    result = run("fine", b"caf\xe9 au lait")
    assert "text argument 2 is not valid UTF-8 (byte 3)" in one_line_error(result)
