"""Every error that means "the input is wrong", under one base class.

Stage scripts and the `predict` command catch `MlbertError` and show its message as one line with
a non-zero exit; anything else is a bug and keeps its traceback. Each class also derives from the
built-in error it used to be, so `except ValueError` / `except OSError` callers keep working.
"""

from __future__ import annotations


class MlbertError(Exception):
    """Bad input the user can fix; the message names the param, file, row or value."""


class ParamsError(MlbertError, ValueError):
    """A parameter is unknown, has the wrong type or is out of range. The message names the key."""


class DataError(MlbertError, ValueError):
    """The data cannot be used; the message names the file, the row and the problem."""


class LabelError(MlbertError, ValueError):
    """A label cell cannot be read, or names a label outside the label list."""


class ModelNotFoundError(MlbertError, OSError):
    """`model.name` is neither a folder, a packaged model, nor loadable from the Hub."""


class ParityError(MlbertError, RuntimeError):
    """An ONNX model's probabilities differ from PyTorch's by more than the tolerance."""


class ModelFolderError(MlbertError, OSError):
    """A model folder is incomplete, damaged, or its files do not belong together; the message
    names the file."""


class BusyError(MlbertError, RuntimeError):
    """Another process is already doing this work in the same folder."""


class InputError(MlbertError, ValueError):
    """The texts to label cannot be read: names the file, the column or the row."""
