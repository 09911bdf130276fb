"""`predict`: label texts with an exported model folder, one JSON line per text.

    predict "I can't wait for the weekend!" "This is awful."
    predict --file tweets.txt --model models/export > predictions.jsonl
    cat tweets.txt | predict
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_MODEL_DIR = "models/export"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="predict", description=__doc__.split("\n")[0])
    parser.add_argument("texts", nargs="*", help="texts to label (default: read lines from --file or stdin)")
    parser.add_argument("--model", default=DEFAULT_MODEL_DIR, help=f"exported folder (default: {DEFAULT_MODEL_DIR})")
    parser.add_argument("--file", type=Path, help="a UTF-8 text file, one text per line")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    args = parser.parse_args(argv)
    if args.texts and args.file:
        parser.error("give texts as arguments or --file, not both")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def read_texts(args: argparse.Namespace) -> list[str]:
    if args.texts:
        return args.texts
    if args.file is not None:
        if not args.file.is_file():
            raise FileNotFoundError(f"--file {args.file}: file not found")
        try:
            lines = args.file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(f"--file {args.file}: not valid UTF-8 ({error.reason})") from error
    else:
        lines = sys.stdin.read().splitlines()
    return [line for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        texts = read_texts(args)
        if not texts:
            raise ValueError("no texts to label (empty input)")
        from .prediction import load_classifier

        classifier = load_classifier(args.model)
    except (OSError, ValueError) as error:
        print(f"predict: error: {error}", file=sys.stderr)
        return 1
    results = classifier.predict(texts, batch_size=args.batch_size, progress=len(texts) > 1000)
    for text, result in zip(texts, results):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
