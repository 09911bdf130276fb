"""`predict --file` on large synthetic files: peak memory and texts/s as the file grows.

    python benchmarks/streaming.py                               # models/export, 10k and 100k lines
    python benchmarks/streaming.py --lines 100000 1000000 --backend onnx-int8
    python benchmarks/streaming.py --device cuda --batch-size 256       # the torch backend on a GPU

Each size runs `predict --file <n lines>.txt --output <out>.jsonl` in a fresh interpreter (so the
peak resident memory is that run's own, model included) on tweet-like texts made up from a fixed
vocabulary (seeded; no real data). Streaming shows as a peak that does not grow with the file.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlbert.paths import EXPORT_DIR

WORDS = ["i", "love", "this", "so", "much", "today", "what", "a", "day", "can't", "believe", "they", "did", "it", "again", "happy", "sad", "angry", "fear", "trust", "the", "game", "was", "great", "terrible", "news", "for", "everyone", "hope", "tomorrow", "brings", "better", "weather", "@someone", "#blessed", "lol", "omg", "why", "would", "anyone", "do", "that", "amazing", "awful", "joy", "surprise"]
# Runs predict's main in this interpreter and reports its own peak RSS (KiB on Linux).
PROBE = (
    "import resource, sys\n"
    "from mlbert.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def write_texts(path: Path, lines: int, seed: int = 0) -> None:
    """`lines` made-up texts of 5 to 30 words, one per line."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as stream:
        for _ in range(lines):
            stream.write(" ".join(rng.choices(WORDS, k=rng.randint(5, 30))) + "\n")


def run_predict(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one `predict` run."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"predict failed: {result.stderr[-2000:]}")
    peak = next(line for line in result.stderr.splitlines() if line.startswith("peak_kib"))
    return seconds, int(peak.split()[1]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=EXPORT_DIR)
    parser.add_argument("--backend", help="predict --backend (default: the fastest the folder has)")
    parser.add_argument("--device", help="predict --device (default: its auto)")
    parser.add_argument("--batch-size", type=int, help="predict --batch-size (default: its 32)")
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--scratch", type=Path, help="where the input and output files go (default: a temp folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="streaming-", dir=args.scratch) as scratch:
        folder = Path(scratch)
        chosen = [
            f"--{name.replace('_', '-')}={value}" for name in ("backend", "device", "batch_size") if (value := getattr(args, name))
        ]
        baseline, _ = run_predict(["--model", str(args.model), *chosen, "warm up"])
        print(f"model {args.model}, {' '.join(chosen) or 'predict defaults'}; load and one text: {baseline:.1f} s\n")
        print("| lines | input MB | wall s | texts/s (after load) | peak RSS MB |")
        print("|---|---|---|---|---|")
        for lines in args.lines:
            source, output = folder / f"{lines}.txt", folder / f"{lines}.jsonl"
            write_texts(source, lines)
            flags = ["--model", str(args.model), "--file", str(source), "--output", str(output)]
            seconds, peak = run_predict(flags + chosen)
            with output.open(encoding="utf-8") as stream:
                written = sum(1 for _ in stream)
            if written != lines:
                raise RuntimeError(f"{output}: {written} lines for {lines} texts")
            rate = lines / max(seconds - baseline, 1e-9)
            print(f"| {lines:,} | {source.stat().st_size / 1e6:.2f} | {seconds:.1f} | {rate:.0f} | {peak:.0f} |", flush=True)
            source.unlink()
            output.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
