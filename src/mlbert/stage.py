"""What every stage script shares: readable failures instead of tracebacks for bad input."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

from .errors import MlbertError

# Errors that mean "the input is wrong": shown as one line, with a non-zero exit. A missing file
# named by a param or a previous stage's output is one too.
USER_ERRORS = (MlbertError, FileNotFoundError)


def run_stage(name: str, main: Callable[[], str | None]) -> None:
    """Run a stage's `main`, print its one-line summary with the wall time, or fail clearly.

    A `main` that returns None has nothing to say (a worker process other than the main one).
    """
    started = time.perf_counter()
    # SIGTERM (what `kill` and job schedulers send) ends the stage like Ctrl-C does: as an
    # exception, so that staging folders are removed and locks released on the way out.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        summary = main()
    except USER_ERRORS as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        sys.exit(1)
    if summary is not None:
        print(f"{name}: {summary} ({time.perf_counter() - started:.1f}s)")


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
