"""What every stage script shares: readable failures instead of tracebacks for bad input."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from .data import DataError
from .labels import LabelError
from .modeling import ModelNotFoundError
from .onnx_export import ParityError
from .params import ParamsError

# Errors that mean "the input is wrong": shown as one line, with a non-zero exit.
USER_ERRORS = (ParamsError, DataError, LabelError, ModelNotFoundError, FileNotFoundError, ParityError)


def run_stage(name: str, main: Callable[[], str | None]) -> None:
    """Run a stage's `main`, print its one-line summary with the wall time, or fail clearly.

    A `main` that returns None has nothing to say (a worker process other than the main one).
    """
    started = time.perf_counter()
    try:
        summary = main()
    except USER_ERRORS as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        sys.exit(1)
    if summary is not None:
        print(f"{name}: {summary} ({time.perf_counter() - started:.1f}s)")
