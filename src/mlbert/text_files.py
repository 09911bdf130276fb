"""Texts to label, read from a file in chunks of bounded size, every cell checked on the way.

`predict --file` reads through `text_chunks` twice: a first pass checks every row and counts them
(a bad row stops the command before the model loads, and the count sizes the progress bar), the
second feeds the model. Memory stays at one chunk whatever the file's size.

    .txt / no suffix   one text per non-blank line, split at "\\n" only
    .csv .tsv          the `text_column` of a table (pandas, in chunks)
    .jsonl             one JSON object per line, its `text_column` key
    .parquet           the `text_column`, one record batch at a time (pyarrow)
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError

CHUNK_TEXTS = 4096
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_SUFFIXES = (".txt", "")
# Bytes that are not UTF-8 reach sys.argv as lone surrogates (PEP 383); JSON can spell one too.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_chunks(path: Path, text_column: str, chunk_size: int | None = None) -> Iterator[list[str]]:
    """The texts of `path` in order, in lists of at most `chunk_size` (default CHUNK_TEXTS);
    InputError naming the file and the line or row of the first problem."""
    if not path.is_file():
        raise InputError(f"--file {path}: {not_a_file(path)}")
    try:
        yield from _chunks(path, text_column, chunk_size or CHUNK_TEXTS)
    except OSError as error:  # read failures are about the input, whatever consumes the chunks
        raise InputError(f"--file {path}: cannot read it ({error.strerror or error})") from error


def not_a_file(path: Path) -> str:
    """Why `path`, which is not a regular file, cannot be read as --file."""
    if path.is_dir():
        return "is a folder; name a file"
    if path.exists():  # a pipe or a device: --file is read twice (checked and counted, then labelled)
        return "is not a regular file (a pipe or a device cannot be read twice, as --file is); send it on stdin instead"
    return "file not found"


def _chunks(path: Path, text_column: str, chunk_size: int) -> Iterator[list[str]]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        texts: Iterable[str] = (text for _, text in _decoded_lines(path) if text.strip())
    elif suffix in (".csv", ".tsv"):
        cells = _delimited_cells(path, text_column, "," if suffix == ".csv" else "\t")
        texts = _checked(enumerate(cells, start=1), path, text_column)
    elif suffix == ".jsonl":  # named by line, since blank lines are skipped
        texts = _checked(_json_line_cells(path, text_column), path, text_column, unit="line")
    elif suffix == ".parquet":
        texts = _checked(enumerate(_parquet_cells(path, text_column), start=1), path, text_column)
    else:
        raise InputError(f"--file {path}: unknown file type {suffix!r}; use .txt, {', '.join(TABLE_SUFFIXES)}")
    yield from _batched(texts, chunk_size)


def count_texts(path: Path, text_column: str) -> int:
    """How many texts `path` holds, every one checked (the whole file is read, a chunk at a time)."""
    return sum(len(chunk) for chunk in text_chunks(path, text_column))


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for every line, less its "\\n" or "\\r\\n" and the file's byte-order mark.
    Only "\\n" ends a line: str.splitlines would also cut at U+2028, U+0085 and form feed, which
    tweets contain. "\\n" never occurs inside a multi-byte UTF-8 sequence, so lines decode alone."""
    offset = 0
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            body = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as error:
                at = offset + error.start + len(raw) - len(body)
                raise InputError(
                    f"--file {path}: line {number} is not valid UTF-8 (byte {at}: {error.reason})"
                ) from error
            offset += len(raw)
            yield number, text.removesuffix("\n").removesuffix("\r")


def _checked(cells: Iterable[tuple[int, Any]], path: Path, column: str, unit: str = "row") -> Iterator[str]:
    """Each cell, which must be a non-blank string of valid Unicode; `cells` are (number, value),
    a problem named as "`unit` number" (rows are counted from 1, lines as in the file)."""
    seen = False
    for number, value in cells:
        seen = True
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"--file {path}: {unit} {number} of column {column!r} has no text ({value!r})")
        surrogate = LONE_SURROGATE.search(value)
        if surrogate:
            raise InputError(
                f"--file {path}: {unit} {number} of column {column!r} holds {surrogate.group()!a}, half of a surrogate "
                "pair (a \\u escape without its other half), which is not valid Unicode"
            )
        yield value
    if not seen:
        raise InputError(f"--file {path}: no data rows (only a header, or nothing)")


def _missing_column(path: Path, column: str, columns: Iterable[Any]) -> InputError:
    return InputError(
        f"--file {path}: no column {column!r} (columns: {', '.join(map(str, columns))}); "
        "name the text column with --text-column"
    )


def _delimited_cells(path: Path, column: str, delimiter: str) -> Iterator[Any]:
    import pandas as pd

    # What data.read_table does for training files: strings as written, no NA guessing; TSV
    # unquoted, as the SemEval files are.
    options = {
        "sep": delimiter,
        "dtype": str,
        "keep_default_na": False,
        "quoting": csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE,
        "encoding": "utf-8-sig",
    }
    try:
        header = pd.read_csv(path, nrows=0, **options).columns
        if column not in header:
            raise _missing_column(path, column, header)
        # Every column is parsed (no usecols): only then does a row with a stray delimiter fail
        # as it does in a whole-file read, instead of shifting its text.
        for frame in pd.read_csv(path, chunksize=CHUNK_TEXTS, **options):
            yield from frame[column].tolist()
    except pd.errors.EmptyDataError as error:
        raise InputError(f"--file {path}: the file is empty") from error
    except pd.errors.ParserError as error:
        raise InputError(f"--file {path}: {error}") from error
    except UnicodeDecodeError:
        for _ in _decoded_lines(path):  # names the line and byte
            pass
        raise


def _json_line_cells(path: Path, column: str) -> Iterator[tuple[int, Any]]:
    first = True
    for number, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"--file {path}: line {number} is not valid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise InputError(f"--file {path}: line {number} is not a JSON object")
        if column not in record:
            if first:
                raise _missing_column(path, column, record)
            raise InputError(f"--file {path}: line {number} has no {column!r} key (keys: {', '.join(record)})")
        first = False
        yield number, record[column]


def _parquet_cells(path: Path, column: str) -> Iterator[Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow's ArrowInvalid and friends
        raise InputError(f"--file {path}: not a readable parquet file ({error})") from error
    names = table.schema_arrow.names
    if column not in names:
        raise _missing_column(path, column, names)
    batches = table.iter_batches(batch_size=CHUNK_TEXTS, columns=[column])
    while True:
        try:
            batch = next(batches, None)
        except Exception as error:  # a damaged page: pyarrow's ArrowInvalid, OSError
            raise InputError(f"--file {path}: cannot be read past row group boundaries ({error})") from error
        if batch is None:
            return
        yield from batch.column(0).to_pylist()
