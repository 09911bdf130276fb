"""An exported folder served on LitServe, with the same `/predict` JSON as `serve`: the other server
library the load test in `serving.py --load --litserve` measures `serve` against.

    python benchmarks/litserve_app.py --model models/export --backend onnx-int8 --port 8081

LitServe batches requests itself: the HTTP server runs in one process and hands each request, through
a queue, to an inference worker process that gathers up to `--max-batch-size` requests, waiting at
most `--max-wait-ms` for them. One request (`{"texts": [...]}`) is one item of a batch, as in
`serve` a request's texts are never split. A benchmark, not a product path: it reads the same
exported folder with the same `load()`, so both servers run the same forward pass, and the only
difference the load test sees is the server around it. Needs `pip install litserve`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import litserve

from mlbert.prediction import BACKENDS, load


class ExportedModel(litserve.LitAPI):
    def __init__(self, folder: Path, backend: str, threads: int | None, batch_log: Path | None, **batching):
        super().__init__(**batching)
        self.folder, self.backend, self.threads, self.batch_log = folder, backend, threads, batch_log

    def setup(self, device: str) -> None:
        # One batch at a time per worker, as `serve --workers 1` runs it (OpenVINO on one stream).
        self.classifier = load(self.folder, backend=self.backend, threads=self.threads, concurrency=1)

    def decode_request(self, request: dict) -> list[str]:
        return request["texts"]

    def batch(self, inputs: list[list[str]]) -> list[list[str]]:
        return inputs  # kept per request: predict runs them as one forward pass and splits them back

    def predict(self, requests: list[list[str]]) -> list[list[dict]]:
        texts = [text for request in requests for text in request]
        decided = self.classifier.predict(texts, batch_size=max(len(texts), 1))
        if self.batch_log is not None:  # how many texts each forward pass held, for the benchmark
            with self.batch_log.open("a", encoding="utf-8") as log:
                log.write(f"{len(texts)}\n")
        answers, start = [], 0
        for request in requests:
            answers.append([{"text": text, **result} for text, result in zip(request, decided[start:])])
            start += len(request)
        return answers

    def unbatch(self, output: list[list[dict]]) -> list[list[dict]]:
        return output

    def encode_response(self, output: list[dict]) -> dict:
        return {"predictions": output}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, help="CPU threads for the forward pass (default: all)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="inference worker processes")
    parser.add_argument("--batch-log", type=Path, help="append the number of texts of each forward pass to this file")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    api = ExportedModel(
        args.model, args.backend, args.threads, args.batch_log,
        max_batch_size=args.max_batch_size, batch_timeout=args.max_wait_ms / 1000,
    )  # fmt: skip
    server = litserve.LitServer(api, accelerator="cpu", workers_per_device=args.workers, timeout=120)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, log_level=args.log_level, generate_client_file=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
