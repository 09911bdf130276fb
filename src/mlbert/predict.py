"""`predict`: label texts with an exported model folder; JSON lines (default) or CSV out.

    predict "I can't wait for the weekend!" "This is awful."
    predict --file tweets.txt > predictions.jsonl              # one text per line
    predict --file tweets.csv --text-column tweet --format csv --output labels.csv
    predict --file tweets.parquet --backend torch               # .csv .tsv .jsonl .parquet tables
    cat tweets.txt | predict
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from .prediction import BACKENDS

DEFAULT_MODEL_DIR = "models/export"
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_SUFFIXES = (".txt", "")


class InputError(ValueError):
    """The texts to label cannot be read: names the file, the column or the row."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="predict", description=__doc__.split("\n")[0])
    parser.add_argument("texts", nargs="*", help="texts to label (default: read --file, else stdin lines)")
    parser.add_argument("--model", default=DEFAULT_MODEL_DIR, help=f"exported folder (default: {DEFAULT_MODEL_DIR})")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="forward pass (default: the fastest the folder has: onnx-int8, onnx, torch)"
    )
    parser.add_argument("--file", type=Path, help="texts: .txt (a text per line), .csv, .tsv, .jsonl or .parquet")
    parser.add_argument("--text-column", default="text", help="the column with the texts in a table (default: text)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)")
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    parser.add_argument("--threads", type=int, help="CPU threads for the forward pass (default: all)")
    args = parser.parse_args(argv)
    if args.texts and args.file:
        parser.error("give texts as arguments or --file, not both")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def read_texts(args: argparse.Namespace) -> list[str]:
    """The texts to label, from arguments, --file or stdin; InputError if there are none."""
    if args.texts:
        texts = list(args.texts)
    elif args.file is not None:
        texts = read_file(args.file, args.text_column)
    else:
        texts = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not texts:
        raise InputError(f"no texts to label: {args.file or 'stdin'} is empty")
    return texts


def read_file(path: Path, text_column: str) -> list[str]:
    """Texts from a plain text file (one per non-blank line) or a table's `text_column`."""
    if not path.is_file():
        raise FileNotFoundError(f"--file {path}: file not found")
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise InputError(f"--file {path}: not valid UTF-8 (byte {error.start}: {error.reason})") from error
        return [line for line in lines if line.strip()]
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"--file {path}: unknown file type {suffix!r}; use .txt, {', '.join(TABLE_SUFFIXES)}")
    frame = _read_table(path, suffix)
    if text_column not in frame.columns:
        raise InputError(
            f"--file {path}: no column {text_column!r} (columns: {', '.join(map(str, frame.columns))}); "
            "name the text column with --text-column"
        )
    column = frame[text_column]
    for row, value in enumerate(column, start=1):
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"--file {path}: row {row} of column {text_column!r} has no text ({value!r})")
    return column.tolist()


def _read_table(path: Path, suffix: str):
    import pandas as pd

    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"--file {path}: not valid UTF-8 (byte {error.start}: {error.reason})") from error
    except pd.errors.EmptyDataError as error:
        raise InputError(f"--file {path}: the file is empty") from error
    except (ValueError, pd.errors.ParserError, OSError) as error:
        raise InputError(f"--file {path}: cannot read it as {suffix[1:]}: {error}") from error


def format_results(texts: list[str], results: list[dict], labels: list[str], fmt: str) -> Iterable[str]:
    """Output lines: JSON objects, or CSV rows (text, labels joined by ';', one probability per label)."""
    if fmt == "jsonl":
        for text, result in zip(texts, results):
            yield json.dumps({"text": text, **result}, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "labels", *labels])
    for text, result in zip(texts, results):
        writer.writerow([text, ";".join(result["labels"]), *(result["scores"][label] for label in labels)])
    yield buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        texts = read_texts(args)
        from .prediction import load

        classifier = load(args.model, backend=args.backend, threads=args.threads)
    except (OSError, ValueError) as error:
        print(f"predict: error: {error}", file=sys.stderr)
        return 1
    results = classifier.predict(texts, batch_size=args.batch_size, progress=args.file is not None)
    lines = format_results(texts, results, classifier.labels, args.format)
    if args.output is None:
        sys.stdout.writelines(lines)
    else:
        args.output.write_text("".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
