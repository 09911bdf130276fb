"""The command-line entry points. `predict`: label texts with an exported model folder; JSON
lines (default) or CSV out.

    predict "I can't wait for the weekend!" "This is awful."
    predict --file tweets.txt > predictions.jsonl              # one text per line
    predict --file tweets.csv --text-column tweet --format csv --output labels.csv
    predict --file tweets.parquet --backend torch               # .csv .tsv .jsonl .parquet tables
    cat tweets.txt | predict

A --file is read in chunks and its predictions written as they come, so its size is bounded by
the disk, not by memory: a first pass checks every row and counts them, then the model runs.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .devices import AUTO, DEVICE_HELP, DeviceError, parse_device
from .errors import InputError, MlbertError
from .outputs import atomic_file
from .paths import EXPORT_DIR
from .prediction import BACKENDS, Classifier, load
from .text_files import LONE_SURROGATE, TEXT_SUFFIXES, count_texts, text_chunks

DEFAULT_MODEL_DIR = str(EXPORT_DIR)
DEFAULT_TEXT_COLUMN = "text"
FORMATS = ("jsonl", "csv")
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="predict", description=__doc__.split("\n")[0])
    parser.add_argument("texts", nargs="*", help="texts to label (default: read --file, else stdin lines)")
    parser.add_argument("--model", default=DEFAULT_MODEL_DIR, help=f"exported folder (default: {DEFAULT_MODEL_DIR})")
    parser.add_argument(
        "--backend", choices=("auto", *BACKENDS), default="auto",
        help="forward pass (default auto: of those the folder has, the fastest on this machine, timed once and cached)",
    )  # fmt: skip
    parser.add_argument("--file", type=Path, help="texts: .txt (a text per line), .csv, .tsv, .jsonl or .parquet")
    parser.add_argument(
        "--text-column", help=f"the column with the texts in a table --file (default: {DEFAULT_TEXT_COLUMN})"
    )
    parser.add_argument(
        "--format", choices=FORMATS,
        help="output format (default: csv for an --output ending in .csv, else jsonl)",
    )  # fmt: skip
    parser.add_argument(
        "--no-csv-escape", dest="csv_escape", action="store_false",
        help="CSV: write cells starting with = + - @ tab or CR as they are, not with a leading ' "
        "that stops spreadsheets running them as formulas",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, help="write here instead of stdout (whole or not at all)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    parser.add_argument("--threads", type=int, help="CPU threads for the forward pass (default: all)")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if args.texts and args.file:
        parser.error("give texts as arguments or --file, not both")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        args.format = output_format(args.format, args.output)
    except ValueError as error:
        parser.error(str(error))
    return args


def output_format(asked: str | None, output: Path | None) -> str:
    """The output format: as asked, else the one --output's suffix names, else jsonl. ValueError
    where the two disagree (CSV in a file named .jsonl is a mistake someone finds later)."""
    named = OUTPUT_SUFFIXES.get(output.suffix.lower()) if output is not None else None
    if asked is not None and named is not None and asked != named:
        raise ValueError(f"--format {asked} but --output {output} names {named}; make them agree")
    return asked or named or "jsonl"


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """`--device`: a misspelt one is a usage error; one this machine lacks fails when the model loads."""

    def device(text: str) -> str:
        try:
            return parse_device(text)
        except DeviceError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    parser.add_argument("--device", type=device, default=AUTO, help=f"where the torch backend runs: {DEVICE_HELP} (default: auto)")


def check_output(args: argparse.Namespace) -> None:
    """Refuse an --output that is --file itself or cannot be written, before any work is done."""
    output = args.output
    if output is None:
        return
    if output.is_dir():
        raise InputError(f"--output {output} is a folder; name a file")
    if args.file is not None and same_file(args.file, output):
        raise InputError(f"--output {output} is the --file being read; writing it would destroy the input")
    if output.exists() and not output.is_file():
        return  # a device or a pipe (/dev/null, a FIFO): written in place
    folder = Path(os.path.realpath(output)).parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"--output {output}: the folder {folder} {problem}")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(f"--output {output}: cannot write in {folder} ({error.strerror or error})") from error


def same_file(a: Path, b: Path) -> bool:
    """The same path once links are followed, or one file under two names (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def read_texts(args: argparse.Namespace) -> list[str]:
    """The texts to label, from arguments, --file or stdin, as one list; InputError if there are none."""
    if args.texts:
        if args.text_column is not None:
            raise InputError("--text-column names a column of a table --file; texts given as arguments have none")
        return check_argument_texts(args.texts)
    if args.file is not None:
        texts = read_file(*file_and_column(args))
        if not texts:
            raise InputError(f"no texts to label: {args.file} is empty")
        return texts
    if args.text_column is not None:
        raise InputError("--text-column names a column of a table --file; stdin is read as one text per line")
    texts = text_lines(decode_utf8(sys.stdin.buffer.read(), "stdin"))
    if not texts:
        raise InputError("no texts to label: stdin is empty")
    return texts


def file_and_column(args: argparse.Namespace) -> tuple[Path, str]:
    """--file and the column its texts are in; InputError for a --text-column a text file cannot have."""
    path, column = args.file, args.text_column
    suffix = path.suffix.lower()
    if column is not None and suffix in TEXT_SUFFIXES:
        kind = f"a {suffix} file" if suffix else "a file without a suffix"
        raise InputError(
            f"--file {path}: --text-column {column!r} names a column of a table, but {kind} "
            "is read as one text per line, header included; if it is a tab-separated table, rename it to .tsv"
        )
    return path, column or DEFAULT_TEXT_COLUMN


def check_argument_texts(texts: list[str]) -> list[str]:
    """The texts given as arguments; InputError naming the first (1-based) that is blank or was not UTF-8."""
    for number, text in enumerate(texts, start=1):
        surrogate = LONE_SURROGATE.search(text)
        if surrogate:
            offset = len(text[: surrogate.start()].encode("utf-8"))
            raise InputError(f"text argument {number} is not valid UTF-8 (byte {offset})")
        if not text.strip():
            raise InputError(f"text argument {number} is {'blank' if text else 'empty'}; give a text to label")
    return list(texts)


def decode_utf8(raw: bytes, source: str) -> str:
    """`raw` as text, less a leading byte-order mark; InputError naming `source` and the byte offset."""
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + len(raw) - len(body)
        raise InputError(f"{source}: not valid UTF-8 (byte {offset}: {error.reason})") from error


def text_lines(text: str) -> list[str]:
    """The non-blank lines, split at "\\n" only (a trailing "\\r" dropped): str.splitlines would also
    cut a text at U+2028, U+0085, form feed and the like, which tweets do contain."""
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return [line for line in lines if line.strip()]


def read_file(path: Path, text_column: str) -> list[str]:
    """Every text of `path` (one per non-blank line, or a table's `text_column`) as one list."""
    return [text for chunk in text_chunks(path, text_column) for text in chunk]


def escape_formula(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def format_results(
    texts: list[str], results: list[dict], labels: list[str], fmt: str, csv_escape: bool = True, header: bool = True
) -> Iterable[str]:
    """Output lines: JSON objects, or CSV rows (text, labels joined by ';', one probability per label)
    after a `header` row, their text cells escaped against formula injection unless `csv_escape` is false."""
    if fmt == "jsonl":
        for text, result in zip(texts, results):
            yield json.dumps({"text": text, **result}, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    # The writer quotes a cell holding a character of its line terminator only: with "\r\n" a "\r"
    # in a text is quoted too. Rows still end in "\n".
    writer = csv.writer(buffer, lineterminator="\r\n")

    def row(cells: list) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([escape_formula(cell) if csv_escape and isinstance(cell, str) else cell for cell in cells])
        return buffer.getvalue().removesuffix("\r\n") + "\n"

    if header:
        yield row(["text", "labels", *labels])
    for text, result in zip(texts, results):
        yield row([text, ";".join(result["labels"]), *(result["scores"][label] for label in labels)])


def write_output(path: Path, lines: Iterable[str]) -> None:
    """Write `lines` to `path` whole or not at all (outputs.atomic_file: a staging file beside it,
    renamed onto it at the end, removed on failure). A device or a pipe cannot be replaced and is
    written in place."""
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8", newline="") as stream:
            stream.writelines(lines)
        return
    target = Path(os.path.realpath(path))  # through a symlink, not over it
    try:
        with atomic_file(target) as staging:
            os.chmod(staging, new_file_mode(target))
            with staging.open("w", encoding="utf-8", newline="") as stream:
                stream.writelines(lines)
                stream.flush()
                os.fsync(stream.fileno())
    except OSError as error:
        raise InputError(f"--output {path}: cannot write it ({error.strerror or error})") from error


def new_file_mode(target: Path) -> int:
    """The permissions a plain write would leave: the existing file's, else the default less umask
    (mkstemp's temp file is private)."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def quiet_transformers() -> None:
    """No "Loading weights" bar: this command's stderr carries its one-line errors and its own progress."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def names_a_file(error: Exception, args: argparse.Namespace) -> bool:
    """Whether `error`'s message says which file it is about: --model, --file, --output or its own."""
    paths = [str(path) for path in (args.model, args.file, args.output) if path is not None]
    return getattr(error, "filename", None) is not None or any(path in str(error) for path in paths)


def prediction_lines(
    classifier: Classifier, chunks: Iterable[list[str]], total: int, args: argparse.Namespace
) -> Iterable[str]:
    """Output lines, produced a chunk at a time as the model labels it; a progress bar over
    `total` texts on stderr for a --file."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="predict", unit="text", disable=args.file is None) as bar:
        for number, chunk in enumerate(chunks):
            results = classifier.predict(chunk, batch_size=args.batch_size, progress=bar.update)
            yield from format_results(
                chunk, results, classifier.labels, args.format, csv_escape=args.csv_escape, header=number == 0
            )


def report_choice(classifier: Classifier) -> None:
    """On stderr, which backend `auto` chose and why: the GPU, or the speeds it timed (nothing for
    a named backend)."""
    from .backend_choice import describe

    if classifier.choice.get("gpu"):
        print(
            f"backend auto: {classifier.backend} on {classifier.device} (a GPU: the CPU backends are not timed; "
            "--device cpu chooses among them)",
            file=sys.stderr,
        )
    elif classifier.choice.get("texts_per_s"):
        print(describe(classifier.choice["texts_per_s"], classifier.backend, classifier.choice["cached"]), file=sys.stderr)


def one_line(error: Exception) -> str:
    """An error's message as one line (a command's stderr carries one line per failure)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with sigterm_as_exit():  # killed, --output's staging file is removed and the old output stays
            return label(args)
    except KeyboardInterrupt:
        print("predict: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (`predict ... | head`): no traceback, and no more output. Python
        # would flush stdout again at exit and fail the same way, so point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM (kill, a job scheduler) raises SystemExit(143), as Ctrl-C raises
    KeyboardInterrupt, so the exception path removes --output's staging file (the stages do the
    same in stage.py). The previous handler is back after it."""
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return

    def exit_on_signal(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def label(args: argparse.Namespace) -> int:
    """The work of `predict`, its errors as one line and exit code 1."""
    try:
        check_output(args)
        if args.file is not None:
            path, column = file_and_column(args)
            total = count_texts(path, column)  # every row checked before the model loads
            if total == 0:
                raise InputError(f"no texts to label: {path} is empty")
            chunks: Iterable[list[str]] = text_chunks(path, column)
        else:
            texts = read_texts(args)
            total, chunks = len(texts), [texts]
        quiet_transformers()
        classifier = load(args.model, backend=args.backend, threads=args.threads, device=args.device)
        report_choice(classifier)
        lines = prediction_lines(classifier, chunks, total, args)
        if args.output is None:
            sys.stdout.writelines(lines)
        else:
            write_output(args.output, lines)
    except (MlbertError, OSError, ValueError) as error:
        # A message that names no file would not say what to fix: keep the traceback for those.
        if not isinstance(error, MlbertError) and not names_a_file(error, args):
            raise
        print(f"predict: error: {one_line(error)}", file=sys.stderr)
        return 1
    return 0


# Bootstrap resamplings: fewer give intervals that move with the seed; beyond the upper bound the
# interval stops changing while the run takes minutes.
MIN_SAMPLES, MAX_SAMPLES = 100, 100_000


def compare_main(argv: list[str] | None = None) -> int:
    """`compare-runs A B`: b - a per metric on the same texts, with its paired-bootstrap interval.

        compare-runs HEAD workspace                     # the last commit against your edits
        compare-runs main my-experiment --split validation --samples 5000
    """
    from .comparison import ComparisonError, paired_bootstrap, read_run

    parser = argparse.ArgumentParser(prog="compare-runs", description=compare_main.__doc__.split("\n")[0])
    parser.add_argument("a", help="a revision DVC knows: commit, branch, tag, experiment name, or 'workspace'")
    parser.add_argument("b", help="the revision to compare with a")
    parser.add_argument("--split", choices=("validation", "test"), default="test", help="which split (default: test)")
    parser.add_argument("--samples", type=int, default=2000, help="bootstrap resamplings (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not MIN_SAMPLES <= args.samples <= MAX_SAMPLES:
        parser.error(f"--samples must be in {MIN_SAMPLES}..{MAX_SAMPLES}")
    if args.seed < 0:
        parser.error("--seed must be at least 0")
    try:
        a, b = read_run(args.a, args.split), read_run(args.b, args.split)
        result = paired_bootstrap(a, b, samples=args.samples, seed=args.seed, progress=True)
    except ComparisonError as error:
        print(f"compare-runs: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "split": args.split, "texts": len(a.ids), "metrics": result}, indent=2))
        return 0
    print(f"{args.split}, {len(a.ids)} texts; b - a with its 95% paired-bootstrap interval ({args.samples} resamplings)")
    print(f"| metric | a: {args.a} | b: {args.b} | b - a | 95% interval |")
    print("|---|---|---|---|---|")
    marked = False
    for metric, row in result.items():
        sure = row["low"] > 0 or row["high"] < 0
        marked |= sure
        print(
            f"| {metric} | {row['a']:.4f} | {row['b']:.4f} | {row['difference']:+.4f}{' *' if sure else ''} | "
            f"[{row['low']:+.4f}, {row['high']:+.4f}] |"
        )
    if marked:
        print("* the interval excludes 0")
    return 0


def seeds_main(argv: list[str] | None = None) -> int:
    """`summarise-seeds`: experiments that differ only in the seed, as mean ± std per score.

        dvc exp run --queue -S train.seed=42,43,44 && dvc exp run --run-all
        summarise-seeds                                  # every experiment of HEAD, grouped
        summarise-seeds exp-a exp-b exp-c --split validation
    """
    from .seeds import SeedSummaryError, experiments_of, group_by_all_but_seed, read_experiment, summary_table

    parser = argparse.ArgumentParser(prog="summarise-seeds", description=seeds_main.__doc__.split("\n")[0])
    parser.add_argument("revs", nargs="*", help="experiment names or commits (default: every experiment of --baseline)")
    parser.add_argument("--baseline", default="HEAD", help="whose experiments to take when no revs are given (default: HEAD)")
    parser.add_argument("--split", choices=("validation", "test"), default="test", help="which split's scores (default: test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        revs = args.revs or experiments_of(args.baseline)
        if not revs:
            raise SeedSummaryError(f"no experiments based on {args.baseline}: run a seed sweep first")
        groups = group_by_all_but_seed(read_experiment(rev) for rev in revs)
    except SeedSummaryError as error:
        print(f"summarise-seeds: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        report = [
            {
                "varying": group.varying,
                "revs": [member.rev for member in group.members],
                "scores": {
                    key: dict(zip(("mean", "std", "min", "max"), group.summary(key) or ()))
                    for key in sorted(group.members[0].scores)
                },
            }
            for group in groups
        ]
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(summary_table(groups, args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
