"""Data sources: the official SemEval-2018 E-c files, the Hub copy, or the user's own files.

Every source ends in the same normalised form: three DataFrames (train / validation / test) with
columns `id` (str), `text` (str) and `labels` (list of label names), plus the ordered label list.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, LabelError
from .hub import hub_offline_reason, offline_help
from .labels import (
    LIST_SEPARATOR,
    collect_label_names,
    labels_to_multi_hot,
    parse_indicator,
    parse_label_list,
    read_label_list,
)
from .params import PrepareParams
from .paths import DATASET_NAME, DEMO_DIR, LABELS_NAME

SPLITS = ("train", "validation", "test")
SEMEVAL_LABELS = (
    "anger", "anticipation", "disgust", "fear", "joy", "love",
    "optimism", "pessimism", "sadness", "surprise", "trust",
)  # fmt: skip
SEMEVAL_FILES = {
    "train": "2018-E-c-En-train.txt",
    "validation": "2018-E-c-En-dev.txt",
    "test": "2018-E-c-En-test-gold.txt",
}
SEMEVAL_HUB_ID = "SemEvalWorkshop/sem_eval_2018_task_1"
SEMEVAL_HUB_CONFIG = "subtask5.english"
SEMEVAL_HUB_REVISION = "refs/convert/parquet"  # datasets >= 4 no longer runs the loading script
SEMEVAL_URL = "https://competitions.codalab.org/competitions/17751#learn_the_details-datasets"
SEMEVAL_NAME = "semeval2018-ec"
DEMO_NAME = "goemotions-demo"
DEMO_DESCRIPTION = "GoEmotions test split, 5427 Reddit comments, 28 labels, Apache-2.0"
DEMO_TABLE_FILE = "test.tsv"
DEMO_LABELS_FILE = "emotions.txt"


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(name, getattr(self, name)) for name in SPLITS]


def load_splits(params: PrepareParams, source: str | None = None) -> Splits:
    """Read the source (`resolve_source(params)` unless given) and return normalised, cut splits."""
    source = source or resolve_source(params)
    if source == "semeval":
        splits = load_semeval(Path(params.dir))
    elif source == "hub":
        splits = load_semeval_from_hub()
    elif source == "demo":
        splits = load_demo(DEMO_DIR, params.validation_fraction, params.test_fraction, params.seed)
    else:
        splits = load_user_files(params)
    if params.labels is not None:
        splits = apply_label_list(splits, params.labels)
    return cut_splits(splits, params.max_train_samples, params.max_eval_samples)


def apply_label_list(splits: Splits, labels: list[str]) -> Splits:
    """Check `prepare.labels` against the data and use its order; raise DataError on a mismatch."""
    missing = [name for name in splits.labels if name not in labels]
    extra = [name for name in labels if name not in splits.labels]
    if missing or extra or len(set(labels)) != len(labels):
        problems = [f"the data also has {', '.join(missing)}" if missing else "",
                    f"the data has no {', '.join(extra)}" if extra else "",
                    "it lists a label twice" if len(set(labels)) != len(labels) else ""]  # fmt: skip
        raise DataError(f"prepare.labels does not match the data: {'; '.join(filter(None, problems))}")
    unseen = [name for name in labels if not any(name in row for row in splits.train["labels"])]
    if unseen:
        raise DataError(f"prepare.labels: no training example has {', '.join(unseen)}")
    return Splits(splits.train, splits.validation, splits.test, list(labels))


def check_label_names(labels: list[str], path: Path) -> None:
    """Raise DataError for label names that cannot be told apart or written back unambiguously.

    The label-aware head reads each name as text ("very_sad" as "very sad"), so names equal but
    for case, spacing or underscores are one label to it; `;` separates names in a label cell and
    in predict's output; a name of invisible characters gives the head no tokens to read.
    """
    invisible = [name for name in labels if all(_is_invisible(char) for char in name)]
    if invisible:
        raise DataError(
            f"{path}: label name(s) {', '.join(map(repr, invisible))} are empty or made only of invisible "
            "or whitespace characters"
        )
    separated = [name for name in labels if LIST_SEPARATOR in name]
    if separated:
        raise DataError(
            f"{path}: label name(s) {', '.join(map(repr, separated))} contain {LIST_SEPARATOR!r}, which separates "
            "label names in a label cell and in predict's output"
        )
    groups = defaultdict(list)
    for name in labels:
        groups[_label_key(name)].append(name)
    clashes = [names for names in groups.values() if len(names) > 1]
    if clashes:
        shown = "; ".join(" and ".join(map(repr, names)) for names in clashes)
        raise DataError(
            f"{path}: label names {shown} differ only in case, spacing or underscores, and the label-aware "
            "head reads them as the same label; rename or merge them"
        )


def _is_invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Cc")


def _label_key(name: str) -> str:
    """What is left of a label name once case, spacing, underscores and invisible characters go."""
    text = unicodedata.normalize("NFKC", name).replace("_", " ").casefold()
    return " ".join("".join(char for char in text if unicodedata.category(char) not in ("Cf", "Cc")).split())


def label_warnings(splits: Splits) -> list[str]:
    """Warnings about the label list that do not stop prepare: a label that no training example
    has (a 0/1 column of zeros only) can be predicted but never learned; a name that looks like
    several joined by the wrong separator."""
    seen = {name for names in splits.train["labels"] for name in names}
    unlearnable = [
        f"label column {name!r} has no positive example in the {len(splits.train)} training examples: "
        "the model cannot learn it"
        for name in splits.labels
        if name not in seen
    ]
    # A label cell "anger,joy" reads as one label named "anger,joy" (the separator is ";"): legal,
    # but far more often a mistake than a name.
    joined = [
        f"label {name!r} looks like several labels joined by {mark!r}; label names in a cell are separated by "
        f"{LIST_SEPARATOR!r} (or give a list)"
        for name in splits.labels
        for mark in (",", "|")
        if mark in name and all(part.strip() for part in name.split(mark))
    ]
    return unlearnable + joined


def shared_texts(splits: Splits) -> dict[str, int]:
    """How many texts of validation / test also occur in train (case and spacing ignored)."""

    def normalised(frame: pd.DataFrame) -> set[str]:
        return {" ".join(text.lower().split()) for text in frame["text"]}

    train = normalised(splits.train)
    return {name: len(normalised(getattr(splits, name)) & train) for name in ("validation", "test")}


def resolve_source(params: PrepareParams) -> str:
    """Turn `auto` into `semeval` (the files are in prepare.dir), else `hub` (reachable), else
    `demo` (the bundled data set, so that a fresh clone runs with no download)."""
    if params.source != "auto":
        return params.source
    folder = Path(params.dir)
    if all((folder / name).is_file() for name in SEMEVAL_FILES.values()):
        return "semeval"
    return "hub" if hub_offline_reason() is None else "demo"


def demo_notice(params: PrepareParams) -> str:
    """The one line prepare prints when `auto` falls back to the demo data."""
    return (
        f"NOTICE: using the bundled demo data ({DEMO_DESCRIPTION}), not the reference task: "
        f"prepare.dir ({params.dir}) lacks the SemEval-2018 E-c files and the Hugging Face Hub is not "
        f"reachable ({hub_offline_reason()}). For SemEval-2018 E-c, put {', '.join(SEMEVAL_FILES.values())} "
        f"into {params.dir} (from {SEMEVAL_URL}) and run `dvc repro` again."
    )


def dataset_card(source: str, params: PrepareParams) -> dict[str, str]:
    """What data set prepare read, for data/prepared/dataset.json and so metrics.json."""
    if source == "demo":
        return {"name": DEMO_NAME, "source": "demo", "description": DEMO_DESCRIPTION}
    if source in ("semeval", "hub"):
        where = params.dir if source == "semeval" else f"{SEMEVAL_HUB_ID}:{SEMEVAL_HUB_CONFIG}"
        return {"name": SEMEVAL_NAME, "source": source, "description": f"SemEval-2018 Task 1 E-c English, from {where}"}
    return {"name": f"files:{params.train_file}", "source": "files", "description": f"own files in {params.dir}"}


def load_demo(folder: Path, validation_fraction: float, test_fraction: float, seed: int) -> Splits:
    """The bundled GoEmotions test split (one table), split into train / validation / test with
    the prepare fractions and seed, stratified like any split held out of a training file."""
    labels = read_demo_labels(folder / DEMO_LABELS_FILE)
    frame = read_demo_table(folder / DEMO_TABLE_FILE, labels)
    train, test = split_off(frame, test_fraction, seed, labels)
    train, validation = split_off(train, validation_fraction / (1.0 - test_fraction), seed, labels)
    return Splits(train=train, validation=validation, test=test, labels=labels)


def read_demo_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (the demo data ships with the repository: restore it with git)")
    return [name.strip() for name in path.read_text(encoding="utf-8").split("\n") if name.strip()]


def read_demo_table(path: Path, labels: list[str]) -> pd.DataFrame:
    """GoEmotions' layout: no header; text, comma-separated label ids, comment id; tab-separated."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (the demo data ships with the repository: restore it with git)")
    ids, texts, label_lists = [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3 or not fields[0].strip():
            raise DataError(f"{path}: line {number} is not <text> TAB <label ids> TAB <id>")
        try:
            names = [labels[int(index)] for index in fields[1].split(",")]
        except (ValueError, IndexError) as error:
            raise DataError(f"{path}: line {number}: label ids {fields[1]!r} are not in 0..{len(labels) - 1}") from error
        texts.append(fields[0])
        label_lists.append(sorted(set(names), key=labels.index))
        ids.append(fields[2])
    return pd.DataFrame({"id": ids, "text": texts, "labels": label_lists})


def load_semeval(folder: Path) -> Splits:
    """Read the three official tab-separated E-c files from `folder`."""
    frames = {split: read_semeval_file(folder / name) for split, name in SEMEVAL_FILES.items()}
    return Splits(**frames, labels=list(SEMEVAL_LABELS))


def read_semeval_file(path: Path) -> pd.DataFrame:
    """Parse one official file: `ID<TAB>Tweet<TAB>` then one 0/1 column per emotion."""
    table = read_table(path, sep="\t")
    expected = ["ID", "Tweet", *SEMEVAL_LABELS]
    if list(table.columns) != expected:
        raise DataError(
            f"{path}: header is {list(table.columns)}, expected the SemEval-2018 E-c header {expected}"
        )
    return normalise(
        table, path, text_column="Tweet", id_column="ID", label_columns=list(SEMEVAL_LABELS)
    )


def load_semeval_from_hub() -> Splits:
    """Fetch the Hub's parquet export of the E-c English config (for users who have the Hub)."""
    reason = hub_offline_reason()
    if reason is not None:
        raise DataError(f"prepare.source is 'hub' but {offline_help(reason)}")
    from datasets import load_dataset

    hub = load_dataset(SEMEVAL_HUB_ID, SEMEVAL_HUB_CONFIG, revision=SEMEVAL_HUB_REVISION)
    where = Path(f"{SEMEVAL_HUB_ID}:{SEMEVAL_HUB_CONFIG}")
    frames = {
        split: normalise(
            hub[split].to_pandas(), where / split, "Tweet", "ID", list(SEMEVAL_LABELS)
        )
        for split in SPLITS
    }
    return Splits(**frames, labels=list(SEMEVAL_LABELS))


def load_user_files(params: PrepareParams) -> Splits:
    """Read the user's own files; a missing validation or test file is split off train."""
    folder = Path(params.dir)
    paths = {
        "train": params.train_file,
        "validation": params.validation_file,
        "test": params.test_file,
    }
    frames: dict[str, pd.DataFrame] = {}
    for split, name in paths.items():
        if name is None:
            continue
        path = folder / name
        frames[split] = normalise(
            read_table(path),
            path,
            text_column=params.text_column,
            id_column=params.id_column,
            label_columns=params.label_columns,
            label_column=params.label_column,
            id_prefix=split,
        )
    labels = list(params.label_columns or params.labels or collect_label_names(frames["train"]["labels"]))
    if not labels:
        raise DataError(f"{folder / params.train_file}: no example has any label")
    check_label_names(labels, folder / params.train_file)
    for split, frame in frames.items():
        check_known_labels(frame, labels, folder / paths[split])
    train = frames["train"]
    fractions = held_out_fractions(params)
    check_room_to_train(len(train), fractions, params, folder / params.train_file)
    for split, fraction in fractions.items():
        train, frames[split] = split_off(train, fraction, params.seed, labels)
    frames["train"] = train
    return Splits(**frames, labels=labels)


def held_out_fractions(params: PrepareParams) -> dict[str, float]:
    """The splits without a file of their own, in the order they are split off train, each with
    its share of what is left at that point: test of all rows, then validation of the rest."""
    fractions = {"test": params.test_fraction} if params.test_file is None else {}
    if params.validation_file is None:
        fractions["validation"] = params.validation_fraction / (1.0 - fractions.get("test", 0.0))
    return fractions


def check_room_to_train(rows: int, fractions: dict[str, float], params: PrepareParams, path: Path) -> None:
    """DataError if splitting `fractions` off `rows` training rows (as split_off does: each part
    rounded up) would leave a part, or train itself, empty."""
    sizes, left = {}, rows
    for split, fraction in fractions.items():
        sizes[split] = math.ceil(fraction * left) if left > 0 else 0
        left -= sizes[split]
    if sizes and (left < 1 or min(sizes.values()) < 1):
        asked = " and ".join(f"prepare.{split}_fraction {getattr(params, f'{split}_fraction'):g}" for split in ("validation", "test") if split in sizes)
        raise DataError(
            f"{path}: {rows} row(s) cannot be split by {asked}: that leaves "
            f"{max(left, 0)} to train on ({', '.join(f'{split} {size}' for split, size in sizes.items())}); "
            "give more rows, smaller fractions, or the split files themselves"
        )


TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet")


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read CSV / TSV (.tsv, .txt) / JSONL / parquet as strings, with errors that name the file and line."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name a file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown file type {suffix or '(no suffix)'!r}; use {', '.join(TABLE_SUFFIXES)}")
    if suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise DataError(f"{path}: line {line} is not valid UTF-8 ({error.reason})") from error
        if suffix in (".jsonl", ".ndjson", ".json"):
            table = _read_json_lines(path, text)
        else:
            delimiter = sep or ("," if suffix == ".csv" else "\t")
            quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
            check_header_names(path, next(csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting), []))
            try:
                table = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, quoting=quoting)
            except pd.errors.ParserError as error:
                raise DataError(f"{path}: {error}") from error
            except pd.errors.EmptyDataError as error:
                raise DataError(f"{path}: the file is empty") from error
    if table.empty:
        raise DataError(f"{path}: no data rows (only a header, or nothing)")
    return table


def check_header_names(path: Path, header: list[str]) -> None:
    """A header that names a column twice is refused: pandas would quietly rename the second
    (`joy` -> `joy.1`), and which of the two holds the labels would be a guess."""
    named = [(number, name) for number, name in enumerate(header, start=1) if name.strip()]
    repeat = first_repeat([name for _, name in named])
    if repeat is not None:
        (first, name), (second, _) = named[repeat[0]], named[repeat[1]]
        raise DataError(
            f"{path}: the header names column {name!r} twice (columns {first} and {second}); "
            "give every column its own name"
        )


def first_repeat(names: list[str]) -> tuple[int, int] | None:
    """The positions of the first name that occurs again (where it first stood, where it came
    back), or None if every name is different."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in seen:
            return seen[name], position
        seen[name] = position
    return None


class _RepeatedKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _object_with_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys without a word; a record that names a column
    twice is refused instead, as a CSV header is (check_header_names)."""
    repeat = first_repeat([key for key, _ in pairs])
    if repeat is not None:
        raise _RepeatedKey(pairs[repeat[0]][0])
    return dict(pairs)


def _read_json_lines(path: Path, text: str) -> pd.DataFrame:
    records = []
    # Only "\n" ends a line: JSON strings may hold U+2028, U+0085 and others that splitlines() splits on.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_object_with_unique_keys)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not valid JSON ({error.msg})") from error
        except _RepeatedKey as repeated:
            raise DataError(f"{path}: line {number} gives {repeated.key!r} twice; which value holds would be a guess") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return pd.DataFrame.from_records(records)


def normalise(
    table: pd.DataFrame,
    path: Path,
    text_column: str,
    id_column: str | None = None,
    label_columns: list[str] | None = None,
    label_column: str | None = None,
    id_prefix: str = "row",
) -> pd.DataFrame:
    """Turn a raw table into (`id`, `text`, `labels`), checking every cell we use."""
    repeated = [name for name, count in Counter(label_columns or []).items() if count > 1]
    if repeated:
        raise DataError(f"prepare.label_columns names {', '.join(map(repr, repeated))} more than once")
    wanted = [text_column, *(label_columns or []), *filter(None, [id_column, label_column])]
    missing = [column for column in wanted if column not in table.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the file has {', '.join(map(repr, map(str, table.columns)))}"
        )
    ids = (
        table[id_column].astype(str).tolist()
        if id_column
        else [f"{id_prefix}-{i:06d}" for i in range(1, len(table) + 1)]
    )
    texts = table[text_column].tolist()
    labels = []
    for i, text in enumerate(texts):
        where = f"{path}: row {i + 1}"
        problem = text_problem(text)
        if problem:
            raise DataError(f"{where} (id {ids[i]}), column {text_column!r}: {problem}")
        try:
            if label_columns is not None:
                cells = table[label_columns].iloc[i]
                labels.append([name for name in label_columns if parse_indicator(cells[name])])
            else:
                labels.append(parse_label_list(table[label_column].iloc[i]))
        except LabelError as error:
            raise DataError(f"{where} (id {ids[i]}): {error}") from error
    duplicates = [name for name, count in Counter(ids).items() if count > 1]
    if duplicates:
        raise DataError(f"{path}: duplicate id(s) {', '.join(duplicates[:5])} in column {id_column!r}")
    return pd.DataFrame({"id": ids, "text": texts, "labels": labels})


def text_problem(value: Any) -> str | None:
    """Why a cell of the text column is not a text to train on, or None if it is one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "text is missing"
    if not isinstance(value, str):
        return f"not text but {type(value).__name__} {value!r:.40}"
    if all(_is_invisible(char) for char in value):
        return "text is empty" if not value.strip() else "text is made only of invisible characters"
    return None


def check_known_labels(frame: pd.DataFrame, labels: list[str], path: Path) -> None:
    known = set(labels)
    for i, names in enumerate(frame["labels"]):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise DataError(
                f"{path}: row {i + 1} (id {frame['id'].iloc[i]}): label(s) {', '.join(unknown)} "
                f"are not in the label set ({', '.join(labels)})"
            )


def split_off(
    frame: pd.DataFrame, fraction: float, seed: int, labels: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out `fraction` of the rows, seeded, by iterative stratification (Sechidis et al., 2011;
    the iterative-stratification package): rows are dealt out label by label, the rarest first,
    so every label's frequency in both parts stays close to the whole's, and rows without any label
    are shared out last. Both parts keep the frame's row order.

    The held-out part has exactly ceil(fraction x rows) rows, as scikit-learn's splitters give:
    iterative stratification only aims at that size (it can end a few rows off, or hold out
    nothing from a handful of rows whose labels are all different), so the difference is moved
    across at random, with the same seed.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    matrix = labels_to_multi_hot(frame["labels"], labels)
    if matrix.shape[1] == 1:  # one label (a yes/no task): stratify on it and on its absence
        matrix = np.hstack([matrix, 1 - matrix])
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    kept, held = next(splitter.split(np.zeros((len(frame), 1)), matrix))
    surplus = len(held) - math.ceil(fraction * len(frame))
    if surplus:
        source = held if surplus > 0 else kept
        moved = np.random.default_rng(seed).choice(source, size=abs(surplus), replace=False)
        held = np.setdiff1d(held, moved) if surplus > 0 else np.union1d(held, moved)
        kept = np.setdiff1d(np.arange(len(frame)), held)
    return (
        frame.iloc[np.sort(kept)].reset_index(drop=True),
        frame.iloc[np.sort(held)].reset_index(drop=True),
    )


def cut_splits(splits: Splits, max_train: int | None, max_eval: int | None) -> Splits:
    """Keep the first `max_train` / `max_eval` rows of each split (None keeps all)."""

    def head(frame: pd.DataFrame, limit: int | None) -> pd.DataFrame:
        return frame if limit is None else frame.head(limit).reset_index(drop=True)

    return Splits(
        train=head(splits.train, max_train),
        validation=head(splits.validation, max_eval),
        test=head(splits.test, max_eval),
        labels=splits.labels,
    )


def write_splits(splits: Splits, folder: Path) -> None:
    """Write each split as parquet and the ordered label list as JSON into `folder`."""
    for name, frame in splits.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / LABELS_NAME).write_text(json.dumps(splits.labels, indent=2) + "\n", encoding="utf-8")


def read_splits(folder: str | Path) -> Splits:
    """Read what `write_splits` wrote."""
    folder = Path(folder)
    labels = read_label_list(folder)
    frames = {}
    for name in SPLITS:
        frame = pd.read_parquet(folder / f"{name}.parquet")
        frame["labels"] = frame["labels"].map(list)
        frames[name] = frame
    return Splits(**frames, labels=labels)


def read_dataset_card(folder: str | Path) -> dict[str, str]:
    """What `dataset_card` wrote into `folder`; "unknown" for splits written by other means."""
    path = Path(folder) / DATASET_NAME
    if not path.is_file():
        return {"name": "unknown", "source": "unknown", "description": f"no {DATASET_NAME} in {folder}"}
    return json.loads(path.read_text(encoding="utf-8"))
