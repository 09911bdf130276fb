"""Tweet-aware text normalisation, applied to every text before the tokenizer sees it.

An uncased WordPiece vocabulary has no emoji (each becomes `[UNK]`, and a run of them one
`[UNK]`), spends tokens on @handles that carry no emotion, reads `#fuming` as `#`, `fu`,
`##ming`, and sees the two characters `\\n` that the SemEval files hold for a line break as a
backslash and an `n`. Each part below is one switch under `normalise:` in params.yaml.

The settings travel with the model: the tokenize stage writes them beside the encoded data,
train stamps them into the model's config.json (`mlbert_normalise`), and every path that feeds
the model texts (evaluate, `predict`, `load()`, the ONNX backends) builds its normaliser from
that config, so training and serving cannot disagree.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import DataError, ModelFolderError, ParamsError
from .params import NormaliseParams, group_from_dict

CONFIG_KEY = "mlbert_normalise"  # where a model's config.json records its normalisation
MENTION_PLACEHOLDER = "@user"
URL_PLACEHOLDER = "http"

_ESCAPED_NEWLINE = re.compile(r"(?:\\r)?\\n")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#&])#(\w+)")
_SKIN_TONE = re.compile(r"_(?:medium-light|medium-dark|light|medium|dark)_skin_tone")
_EMOJI_NAME = re.compile(r"\uE000([^\uE001]*)\uE001")  # private-use delimiters cannot clash with text
_SPACES = re.compile(r"\s+")


# Every part on: what the tweet preset in docs/pipeline.md sets.
TWEETS = NormaliseParams(
    escaped_newlines=True, html_entities=True, mentions=True, urls=True, emoji=True, hashtags="segment"
)
# Every part off: a model whose config records no normalisation.
IDENTITY = NormaliseParams(
    escaped_newlines=False, html_entities=False, mentions=False, urls=False, emoji=False, hashtags="keep"
)


def normalise_text(text: str, params: NormaliseParams) -> str:
    """`text` rewritten as `params` asks; whitespace is collapsed unless nothing is asked."""
    if params.is_identity:
        return text
    if params.escaped_newlines:
        text = _ESCAPED_NEWLINE.sub(" ", text)
    if params.html_entities:
        text = html.unescape(text)
    if params.urls:  # before mentions: a URL may hold an @
        text = _URL.sub(URL_PLACEHOLDER, text)
    if params.mentions:
        text = _MENTION.sub(MENTION_PLACEHOLDER, text)
    if params.hashtags != "keep":
        text = _HASHTAG.sub(_hashtag_words if params.hashtags == "segment" else r"\1", text)
    if params.emoji:
        text = emoji_to_words(text)
    return _SPACES.sub(" ", text).strip()


def normalise_texts(texts: Sequence[str], params: NormaliseParams) -> list[str]:
    if params.is_identity:  # the default: no per-text call
        return list(texts)
    return [normalise_text(text, params) for text in texts]


def emoji_to_words(text: str) -> str:
    """Each emoji replaced by its name in words, set off by spaces; skin tones dropped (they
    say nothing about the emotion and would cost tokens)."""
    import emoji

    named = emoji.demojize(text, delimiters=("\uE000", "\uE001"))
    return _EMOJI_NAME.sub(lambda match: f" {_SKIN_TONE.sub('', match.group(1)).replace('_', ' ')} ", named)


def _hashtag_words(match: re.Match) -> str:
    return segment_hashtag(match.group(1))


@functools.lru_cache(maxsize=65536)
def segment_hashtag(tag: str) -> str:
    """`firstworldprobs` -> `first world probs`, by the most probable split under a unigram and
    bigram model of English (the wordsegment package); camelCase boundaries are kept as splits."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+|_", tag) or [tag]
    return " ".join(word for part in parts if part != "_" for word in _segment_words(part))


def _segment_words(part: str) -> list[str]:
    if len(part) <= 3 or not part.isalpha():
        return [part]
    words = _segmenter()(part)  # lower-cased words
    return words if len(words) > 1 else [part]


@functools.lru_cache(maxsize=1)
def _segmenter() -> Callable[[str], list[str]]:
    import wordsegment

    wordsegment.load()  # ~1 s: reads the package's unigram and bigram counts
    return wordsegment.segment


def from_config(config: Any, folder: Path | str = "") -> NormaliseParams:
    """The normalisation a model was trained with, from its config; none for a model without one."""
    recorded = getattr(config, CONFIG_KEY, None)
    if recorded is None:
        return IDENTITY
    try:
        return from_dict(recorded, where=f"{Path(folder) / 'config.json'} {CONFIG_KEY}")
    except ParamsError as error:
        raise ModelFolderError(str(error)) from error


def from_dict(recorded: Mapping[str, Any], where: str) -> NormaliseParams:
    """Settings recorded by a (possibly other) version of the pipeline, checked like params."""
    if not isinstance(recorded, Mapping):
        raise ParamsError(f"{where}: expected a mapping of normalise settings, got {type(recorded).__name__}")
    try:
        return group_from_dict("normalise", dict(recorded))
    except ParamsError as error:
        raise ParamsError(f"{where}: not a normalisation this version knows ({error})") from error


def read_recorded(path: Path) -> dict[str, Any]:
    """The settings a stage recorded in `path` (tokenize's normalise.json), checked; as plain data."""
    import json

    if not path.is_file():
        raise DataError(f"{path} not found: data/tokenized predates text normalisation; run `dvc repro` to re-encode it")
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{path} is not valid JSON ({error}); run `dvc repro` to re-encode the data") from error
    return asdict(from_dict(recorded, where=str(path)))
