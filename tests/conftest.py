"""Shared fixtures: small data files written by the tests themselves (never rows of real data)."""

from __future__ import annotations

from pathlib import Path

import pytest

SEMEVAL_HEADER = (
    "ID\tTweet\tanger\tanticipation\tdisgust\tfear\tjoy\tlove\toptimism\tpessimism\tsadness\tsurprise\ttrust"
)


def semeval_like_lines(prefix: str, count: int) -> list[str]:
    """Rows in the official layout with synthetic ids (`fx-<prefix>-N`) and invented texts."""
    rows = []
    for i in range(count):
        labels = ["0"] * 11
        labels[i % 11] = "1"
        if i % 3 == 0:
            labels[(i + 4) % 11] = "1"
        if i % 7 == 0:
            labels = ["0"] * 11  # some neutral examples
        text = f"  synthetic text number {i} with a \\n literal  "
        if i % 4 == 1:  # what tweets carry and the normaliser rewrites
            text += f"@fan_{i} &amp; #BestDayEver 😡🐱"
        rows.append(f"fx-{prefix}-{i:04d}\t{text}\t" + "\t".join(labels))
    return rows


def write_crlf(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


@pytest.fixture(scope="session", autouse=True)
def backend_choice_cache(tmp_path_factory: pytest.TempPathFactory):
    """`auto`'s timing cache in a folder of this test session (subprocesses inherit it), never ~/.cache."""
    folder = tmp_path_factory.mktemp("mlbert-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLBERT_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def semeval_dir(tmp_path: Path) -> Path:
    """A folder holding the three official file names, in the official format (CRLF, tabs)."""
    for name, prefix, count in (
        ("2018-E-c-En-train.txt", "tr", 30),
        ("2018-E-c-En-dev.txt", "dv", 12),
        ("2018-E-c-En-test-gold.txt", "te", 15),
    ):
        write_crlf(tmp_path / name, [SEMEVAL_HEADER, *semeval_like_lines(prefix, count)])
    return tmp_path


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Hub look unreachable, as on a machine without network."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def tokenizer():
    """The packaged model's BERT WordPiece tokenizer (no network); do not change it in a test."""
    from transformers import AutoTokenizer

    from mlbert.modeling import resolve_model
    from mlbert.params import DEFAULT_MODEL

    return AutoTokenizer.from_pretrained(resolve_model(DEFAULT_MODEL).location)
