"""`serve`: an HTTP service over an exported folder (FastAPI on uvicorn), with dynamic batching.

    serve --model models/export --host 127.0.0.1 --port 8080
    curl -s localhost:8080/predict -H 'content-type: application/json' -d '{"texts": ["What a day!"]}'

Endpoints: `POST /predict` ({"texts": [...]} -> {"predictions": [...]}, each prediction the JSON
line `predict` writes), `GET /health`, `GET /metadata`, and the OpenAPI docs at `/docs`.

Texts from concurrent requests are batched together: the first text to arrive waits at most
`max_wait_ms` for others, up to `max_batch_size` texts, and `workers` threads run the model, one
batch each, while the event loop keeps accepting requests. On a CPU the defaults are small
batches, several in flight (see CPU_BATCHING); on a GPU, one big batch at a time. On SIGTERM or
Ctrl-C, uvicorn stops accepting connections and answers every request already received before
the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from .cli import add_device_argument
from .devices import CPU, device_for_backend
from .errors import MlbertError
from .manifest import read_manifest
from .paths import EXPORT_DIR
from .prediction import BACKENDS, Classifier, available_backends, load
from .text_files import LONE_SURROGATE

# How requests are batched when the flags leave it open, by where the model runs. On a CPU,
# one-text requests arrive in no length order, so a small batch pads less, and with four batches
# in flight the next one is ready when a core frees, while answers go out and requests come in
# (16 clients, 2 cores: 364-375 texts/s and p99 74 ms, against 287-290 and 98 ms with one batch of
# up to 32 at a time; docs/serving.md). A GPU wants big batches, one at a time.
CPU_BATCHING = {"max_batch_size": 4, "workers": 4}
GPU_BATCHING = {"max_batch_size": 32, "workers": 1}


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask, and how requests are batched (the defaults: CPU_BATCHING)."""

    max_texts: int = 256  # texts in one request
    max_body_bytes: int = 1 << 20  # bytes of one request body
    max_batch_size: int = CPU_BATCHING["max_batch_size"]  # texts in one forward pass
    max_wait_ms: float = 5.0  # how long a text waits for others to share its batch
    workers: int = CPU_BATCHING["workers"]  # forward passes that may run at the same time

    def __post_init__(self) -> None:
        for name in ("max_texts", "max_body_bytes", "max_batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.max_wait_ms < 60_000:  # also refuses nan and inf
            raise ValueError(f"max_wait_ms must be at least 0 and under 60000, got {self.max_wait_ms}")


class Batcher:
    """Gathers the texts of concurrent requests into shared forward passes.

    A request's texts are never split across batches, so a request larger than `max_batch_size`
    runs alone (still in passes of `max_batch_size`). The model runs in `workers` threads (one
    batch each): the forward pass and the tokenizer release the GIL, so the event loop keeps
    reading requests, and with two workers the next batch forms and runs while one is in flight."""

    def __init__(self, classifier: Classifier, max_batch_size: int, max_wait_ms: float, workers: int = 1):
        self.classifier = classifier
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.workers = workers
        self.queue: asyncio.Queue[tuple[list[str], asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlbert-model")
        self.in_flight: set[asyncio.Task] = set()
        self.batches = 0  # forward-pass groups run, for /metadata and the load benchmark
        self.texts = 0

    async def probabilities(self, texts: list[str]) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def run(self) -> None:
        free = asyncio.Semaphore(self.workers)
        while True:
            await free.acquire()  # a batch forms only when a worker can take it
            waiting = await self.next_batch()
            task = asyncio.create_task(self.answer_safely(waiting, free))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def answer_safely(self, waiting: list[tuple[list[str], asyncio.Future]], free: asyncio.Semaphore) -> None:
        try:
            await self.answer(waiting)
        except Exception as error:  # noqa: BLE001 - never let one batch stop the service
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
        finally:
            free.release()

    async def next_batch(self) -> list[tuple[list[str], asyncio.Future]]:
        """The first waiting request, and those that arrive within max_wait_ms, up to max_batch_size
        texts. Requests whose client has gone (cancelled futures) are dropped."""
        loop = asyncio.get_running_loop()
        waiting: list[tuple[list[str], asyncio.Future]] = []
        while not waiting:
            item = await self.queue.get()
            if not item[1].done():
                waiting.append(item)
        count = len(waiting[0][0])
        deadline = loop.time() + self.max_wait_s
        while count < self.max_batch_size:
            try:
                if self.queue.empty():
                    item = await asyncio.wait_for(self.queue.get(), deadline - loop.time())
                else:
                    item = self.queue.get_nowait()
            except (TimeoutError, asyncio.TimeoutError):
                break
            if item[1].done():
                continue
            if count + len(item[0]) > self.max_batch_size:
                self.queue_front(item)
                break
            waiting.append(item)
            count += len(item[0])
        return waiting

    async def answer(self, waiting: list[tuple[list[str], asyncio.Future]]) -> None:
        """Run the batch and hand each request its rows. If the batch fails, each request is run
        alone, so only the one that caused the failure gets the error."""
        loop = asyncio.get_running_loop()
        texts = [text for request, _ in waiting for text in request]
        try:
            probabilities = await loop.run_in_executor(self.executor, self.classifier.predict_proba, texts, self.max_batch_size)
        except Exception:
            if len(waiting) == 1:
                raise
            for item in waiting:
                try:
                    await self.answer([item])
                except Exception as error:  # noqa: BLE001 - handed to that request alone
                    if not item[1].done():
                        item[1].set_exception(error)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for request, future in waiting:
            if not future.done():
                future.set_result(probabilities[start : start + len(request)])
            start += len(request)

    def queue_front(self, item: tuple[list[str], asyncio.Future]) -> None:
        """Put back an item that did not fit, ahead of the rest: it opens the next batch."""
        held = [item]
        while not self.queue.empty():
            held.append(self.queue.get_nowait())
        for entry in held:
            self.queue.put_nowait(entry)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(
        description="the texts to label: at least one, at most the server's --max-texts, none blank; a text "
        "longer than the model's max_length is truncated as in training",
        examples=[["What a day!", "I can't believe they did this."]],
    )


class Prediction(BaseModel):
    text: str
    labels: list[str] = Field(description="the labels at or above their threshold")
    scores: dict[str, float] = Field(description="every label's probability")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


def metadata(classifier: Classifier, folder: Path, limits: ServeLimits) -> dict[str, Any]:
    """What /metadata answers: the labels and thresholds, the base model, scores, the backend."""
    manifest = read_manifest(folder) or {}
    params = manifest.get("params") or {}
    return {
        "labels": classifier.labels,
        # Rounded: stored as float32, 0.35 would read 0.3499999940395355.
        "thresholds": {label: round(float(t), 6) for label, t in zip(classifier.labels, classifier.thresholds)},
        "base_model": (params.get("model") or {}).get("name"),
        "metrics": manifest.get("metrics"),
        "backend": classifier.backend,
        # False: a text's answer can depend on the other requests batched with it.
        "batch_independent": classifier.batch_independent,
        "device": classifier.device,
        "backend_texts_per_s": classifier.choice.get("texts_per_s") or None,  # what `auto` chose by
        "normalise": dict(vars(classifier.normalise)),
        "model_dir": str(folder),
        "limits": vars(limits),
    }


def default_limits(device: str) -> ServeLimits:
    """The request limits and the batching for a model running on `device` (cpu, cuda:N)."""
    return ServeLimits(**(CPU_BATCHING if device == CPU else GPU_BATCHING))


def create_app(classifier: Classifier, folder: Path, limits: ServeLimits | None = None) -> Any:
    """The ASGI app: FastAPI routes behind a body-size limit, the batcher started with the app.
    `limits` None: the defaults for where the classifier runs (default_limits)."""
    limits = default_limits(classifier.device) if limits is None else limits
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = Batcher(classifier, limits.max_batch_size, limits.max_wait_ms, limits.workers)
        task = asyncio.create_task(batcher.run())
        state["batcher"], state["task"] = batcher, task
        try:
            yield
        finally:  # uvicorn runs this after the requests in flight were answered
            task.cancel()
            batcher.close()

    app = FastAPI(
        title="mlbert",
        summary=f"Multi-label text classification: {', '.join(classifier.labels)}",
        version="1",
        lifespan=lifespan,
    )
    info = metadata(classifier, folder, limits)

    @app.exception_handler(RequestValidationError)
    async def unreadable_request(request: Request, error: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        if request.method == "POST" and media != "application/json" and not media.endswith("+json"):
            # FastAPI reads a body as JSON only when it says it is JSON (curl -d sends a form type).
            detail = f"send the body as application/json (this request's content-type is {content_type or 'missing'})"
            return JSONResponse({"detail": detail}, status_code=415)
        problems = [{key: value for key, value in problem.items() if key != "input"} for problem in error.errors()]
        not_json = any(problem.get("type") == "json_invalid" for problem in problems)
        message = "; ".join(_describe(problem) for problem in problems)
        return JSONResponse(
            {"detail": message, "errors": json.loads(json.dumps(problems, default=str))},
            status_code=400 if not_json else 422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers a body it cannot decode (bytes that are not UTF-8) with a bare 400
        # "There was an error parsing the body"; say what is wrong with it. Other errors (404,
        # 405) keep their own detail.
        detail = error.detail
        if error.status_code == 400 and request.method == "POST":
            detail = "the body is not valid JSON: it must be UTF-8 text"
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    @app.post("/predict", response_model=PredictResponse)
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """Labels and per-label probabilities for each text, in the order given."""
        texts = request.texts
        problem = _check_texts(texts, limits.max_texts)
        if problem:
            return JSONResponse({"detail": problem}, status_code=422)
        try:
            probabilities = await state["batcher"].probabilities(texts)
        except Exception as error:  # noqa: BLE001 - a JSON 500 that names it, not a bare one
            return JSONResponse({"detail": f"the model failed on this request: {type(error).__name__}: {error}"}, status_code=500)
        decided = classifier.decide(probabilities)
        # Built from validated texts and the model's own labels: answered as is, without FastAPI
        # validating it again against the response model (which still documents it).
        return JSONResponse({"predictions": [{"text": text, **result} for text, result in zip(texts, decided)]})

    @app.get("/health")
    async def health() -> Any:
        """200 while the model is loaded and the batcher runs; 503 otherwise."""
        task = state.get("task")
        if task is None or task.done():
            return JSONResponse({"status": "unavailable", "detail": "the batching worker is not running"}, status_code=503)
        return {"status": "ok"}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        """Labels, thresholds, base model, the export's validation and test scores, backend, limits."""
        batcher = state.get("batcher")
        return {**info, "served": {"batches": batcher.batches, "texts": batcher.texts} if batcher else None}

    return BodyLimit(app, limits.max_body_bytes)


def _check_texts(texts: list[str], max_texts: int) -> str | None:
    if not texts:
        return "texts is an empty list; give at least one text to label"
    if len(texts) > max_texts:
        return f"texts has {len(texts)} items, more than this server's limit of {max_texts} per request (--max-texts)"
    for index, text in enumerate(texts):
        if not text.strip():
            return f"texts[{index}] is {'blank' if text else 'empty'}; give a text to label"
        surrogate = LONE_SURROGATE.search(text)
        if surrogate:
            return f"texts[{index}] holds {surrogate.group()!a}, half of a surrogate pair, which is not valid Unicode"
    return None


def _describe(problem: dict[str, Any]) -> str:
    """One validation problem as a sentence naming where: `texts[2]: Input should be a valid string`."""
    where = [part for part in problem.get("loc", ()) if part != "body"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where).lstrip(".")
    if problem.get("type") == "json_invalid":
        return f"the body is not valid JSON ({problem.get('ctx', {}).get('error', problem.get('msg'))})"
    if problem.get("type") == "missing":
        return f"{path or 'the body'} is missing: send {{\"texts\": [\"a text\", ...]}} as application/json"
    if problem.get("type") == "extra_forbidden":
        return f"{path} is not a field this endpoint takes (only texts)"
    if problem.get("type") == "model_attributes_type":
        return 'the body must be a JSON object: {"texts": ["a text", ...]}'
    return f"{path or 'the body'}: {problem.get('msg')}"


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before anything parses it.

    The body is read here (at most `limit` + one chunk), then replayed to the app. An over-limit
    upload is read to its end, up to another `limit` bytes, before the 413 goes out: closing on a
    client that is still sending gives it a reset instead of the answer."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            # At once when the client waits for a go-ahead (Expect: 100-continue: it has sent
            # nothing yet) or the body is too large to be worth reading; else read it first, as below.
            waiting = headers.get(b"expect", b"").lower() == b"100-continue"
            if waiting or int(declared) > 2 * self.limit or await self.drained(receive, more=True):
                await self.too_large(send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                if await self.drained(receive, more):
                    await self.too_large(send)
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as the server would say

        await self.app(scope, replay, send)

    async def drained(self, receive: Any, more: bool) -> bool:
        """Read and drop what is left of an over-limit upload, up to another `limit` bytes, before
        answering: a client still sending its last chunks would otherwise find the connection
        closed and get a broken pipe instead of the 413. False if the client went away."""
        dropped = 0
        while more and dropped <= self.limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)
        return True

    async def too_large(self, send: Any) -> None:
        payload = json.dumps(
            {"detail": f"the request body is larger than this server's limit of {self.limit} bytes (--max-body-bytes)"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),  # or the server reads the rest of the upload to keep the connection
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = ServeLimits()
    parser = argparse.ArgumentParser(prog="serve", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=EXPORT_DIR, help=f"exported folder (default: {EXPORT_DIR})")
    parser.add_argument(
        "--backend", choices=("auto", *BACKENDS), default="auto",
        help="forward pass (default auto: of those the folder has, the fastest on this machine whose answers do not "
        "depend on the other requests in a batch, so not onnx-int8; timed once and cached)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    parser.add_argument("--threads", type=int, help="CPU threads of each forward pass (default: the cores shared among the workers)")
    parser.add_argument(
        "--max-batch-size", type=int,
        help=f"texts per forward pass (default: {CPU_BATCHING['max_batch_size']} on a CPU, {GPU_BATCHING['max_batch_size']} on a GPU)",
    )  # fmt: skip
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms, help="how long a text waits for others to batch with (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int,
        help=f"forward passes in flight at once (default: {CPU_BATCHING['workers']} on a CPU, {GPU_BATCHING['workers']} on a GPU)",
    )  # fmt: skip
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts, help="texts per request (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes, help="request body size limit (default: %(default)s)")
    parser.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to finish requests in flight on SIGTERM (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")
    if not 0 <= args.graceful_timeout < 86_400:  # also refuses nan and inf
        parser.error(f"--graceful-timeout must be at least 0 seconds and under a day, got {args.graceful_timeout}")
    try:
        args.limits = ServeLimits(
            args.max_texts,
            args.max_body_bytes,
            defaults.max_batch_size if args.max_batch_size is None else args.max_batch_size,
            args.max_wait_ms,
            defaults.workers if args.workers is None else args.workers,
        )
    except ValueError as error:
        message = str(error).replace("max_", "--max-").replace("_", "-")
        parser.error("--" + message if message.startswith("workers") else message)
    return args


def batching_for_device(args: argparse.Namespace) -> ServeLimits:
    """`args.limits`, with GPU_BATCHING for what the flags left open when the model will run on a
    GPU (resolved as load() will: `--device` and the backend)."""
    from .launch import visible_gpus

    backend, present = (None if args.backend == "auto" else args.backend), available_backends(args.model)
    if not present:  # not a model folder: load() says so, naming it
        return args.limits
    if device_for_backend(args.device, backend, present, visible_gpus()) == CPU:
        return args.limits
    open_keys = {key: value for key, value in GPU_BATCHING.items() if getattr(args, key) is None}
    return replace(args.limits, **open_keys)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    from .cli import one_line, quiet_transformers, report_choice

    quiet_transformers()
    try:
        limits = batching_for_device(args)
        # Concurrent requests share batches, so a batch-dependent backend would let one client's
        # texts change another's labels: `auto` leaves such backends out here (not in `predict`,
        # whose batches hold only the caller's own texts).
        classifier = load(
            args.model, backend=args.backend, threads=args.threads, concurrency=limits.workers, device=args.device,
            batch_independent=True,
        )  # fmt: skip
        report_choice(classifier)
        if not classifier.batch_independent:
            print(
                f"serve: warning: backend {classifier.backend}: a text's labels can change with the other "
                "requests batched with it (docs/serving.md); --backend openvino-int8 or onnx avoid that",
                file=sys.stderr,
            )
    except (MlbertError, OSError, ValueError) as error:
        print(f"serve: error: {one_line(error)}", file=sys.stderr)
        return 1
    app = create_app(classifier, args.model, limits)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        limit_concurrency=None,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
