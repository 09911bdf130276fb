"""mlbert: fine-tune BERT-family encoders for multi-label text classification under DVC."""

__version__ = "0.1.0"
