"""mlbert: fine-tune BERT-family encoders for multi-label text classification under DVC."""

__version__ = "0.1.0"

from .prediction import Classifier, load  # noqa: E402  (the public API: load(folder).predict(texts))

__all__ = ["Classifier", "load", "__version__"]
