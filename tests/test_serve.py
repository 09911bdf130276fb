"""`serve` as a real server process on a tiny randomly initialised BERT folder, spoken to over real
HTTP: answers equal `predict`'s, concurrent requests share batches, every bad request gets a 4xx
that names the problem, and SIGTERM finishes the requests in flight before the process exits."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tiny_models import torch_sees_a_gpu, write_tiny_classifier_folder

from mlbert.prediction import load

LABELS = ["anger", "joy"]
TEXTS = ["so happy today", "this is awful", "meh", "what a day, honestly, what a long long day"]
MAX_TEXTS = 8
MAX_BODY = 4096


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    # Truncating at 64 tokens, as the train stage sets tokenize.max_length, within the model's positions.
    return write_tiny_classifier_folder(tmp_path_factory.mktemp("model") / "export", tokenizer, LABELS, max_length=64)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`python -m mlbert.serving` on a free port, killed at the end whatever happened."""

    def __init__(self, model_dir: Path, *flags: str):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop()): not a pipe: one nobody reads could fill and stall the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlbert.serving", "--model", str(model_dir), "--port", str(self.port),
             "--log-level", "warning", *flags],
            stdout=self.log, stderr=self.log,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.output()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("serve did not answer /health within 180 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {"content-type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def predict(self, payload) -> tuple[int, dict]:
        return self.request("POST", "/predict", json.dumps(payload).encode())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(model_dir):
    running = Server(model_dir, "--max-texts", str(MAX_TEXTS), "--max-body-bytes", str(MAX_BODY))
    yield running
    running.stop()


def test_predictions_are_predicts_labels_and_scores_for_each_text_in_order(server, model_dir):
    status, body = server.predict({"texts": TEXTS})
    assert status == 200
    expected = load(model_dir).predict(TEXTS)
    assert [p["text"] for p in body["predictions"]] == TEXTS
    for got, want in zip(body["predictions"], expected):
        assert got["labels"] == want["labels"]
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-5)  # other texts share the batch's padding


@pytest.mark.parametrize("workers", [["--workers", "1"], ["--workers", "2", "--threads", "1"]])
def test_concurrent_single_text_requests_share_forward_passes(model_dir, workers):
    server = Server(model_dir, "--max-wait-ms", "200", *workers)
    try:
        before = server.request("GET", "/metadata")[1]["served"]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: server.predict({"texts": [f"text number {i}"]}), range(48)))
        after = server.request("GET", "/metadata")[1]["served"]
    finally:
        server.stop()
    assert all(status == 200 and body["predictions"][0]["text"] == f"text number {i}" for i, (status, body) in enumerate(answers))
    assert after["texts"] - before["texts"] == 48
    assert after["batches"] - before["batches"] < 48 / 2  # most passes carried several requests
    expected = load(model_dir).predict([f"text number {i}" for i in range(48)])
    for (_, body), want in zip(answers, expected):  # each answer is its own text's, whichever worker ran it
        assert body["predictions"][0]["scores"] == pytest.approx(want["scores"], abs=1e-5)


def test_a_text_longer_than_the_model_takes_is_truncated_not_refused(server):
    status, body = server.predict({"texts": ["word " * 500]})  # 500 tokens, within the body limit
    assert status == 200 and len(body["predictions"]) == 1


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 400, "the body is not valid JSON"),
        (b"{}", 422, "texts is missing"),
        (b'{"text": ["a"]}', 422, "texts is missing"),
        (b'["a", "b"]', 422, "the body must be a JSON object"),
        (b'{"texts": "just one"}', 422, "texts: Input should be a valid list"),
        (b'{"texts": ["fine", 3]}', 422, "texts[1]: Input should be a valid string"),
        (b'{"texts": ["fine", null]}', 422, "texts[1]: Input should be a valid string"),
        (b'{"texts": []}', 422, "texts is an empty list"),
        (b'{"texts": ["fine", "   "]}', 422, "texts[1] is blank"),
        (json.dumps({"texts": ["t"] * (MAX_TEXTS + 1)}).encode(), 422, f"more than this server's limit of {MAX_TEXTS}"),
        (json.dumps({"texts": ["x" * MAX_BODY]}).encode(), 413, f"larger than this server's limit of {MAX_BODY} bytes"),
        (b'{"texts": ["a"], "threshold": 0.1}', 422, "threshold is not a field this endpoint takes"),
        (b"", 422, "the body is missing"),
        (b'{"texts": ["fine", "half an emoji \\ud83d"]}', 422, "texts[1] holds '\\ud83d', half of a surrogate pair"),
        (b'{"texts": ["caf\xe9"]}', 400, "the body is not valid JSON: it must be UTF-8 text"),  # Latin-1 bytes
    ],
    ids=["not-json", "no-texts", "misnamed", "not-an-object", "not-a-list", "a-number", "a-null", "empty-list",
         "blank-text", "too-many", "too-large", "extra-field", "empty-body", "lone-surrogate", "not-utf8"],
)  # fmt: skip
def test_a_bad_request_gets_a_4xx_naming_the_problem(server, body, status, message):
    got, answer = server.request("POST", "/predict", body)
    assert got == status, answer
    assert message in answer["detail"]


def test_a_body_that_is_not_declared_json_is_refused_naming_its_content_type(server):
    """`curl -d` without `-H content-type: application/json` sends a form type."""
    status, answer = server.request("POST", "/predict", b'{"texts": ["a"]}', {"content-type": "application/x-www-form-urlencoded"})
    assert status == 415 and "application/json" in answer["detail"] and "x-www-form-urlencoded" in answer["detail"]


def test_a_body_over_the_limit_without_a_length_header_is_refused_too(server):
    """Chunked transfer: no Content-Length to trust, so the bytes are counted as they arrive."""
    chunks = iter([b'{"texts": ["', b"x" * MAX_BODY, b'"]}'])
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/predict", body=chunks, headers={"content-type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and "larger than" in json.loads(response.read())["detail"]
    finally:
        connection.close()


def test_a_declared_length_over_the_limit_gets_the_413_even_while_the_body_is_still_arriving(server):
    """A client without `Expect: 100-continue` sends its whole body before it reads the answer: the
    server reads the rest (a slow second half here) instead of resetting the connection."""

    def slowly():  # the second piece meets a closed socket, the third would get a broken pipe
        yield b'{"texts": ["' + b"x" * (MAX_BODY // 2)
        time.sleep(0.3)
        yield b"x" * (MAX_BODY // 4)
        time.sleep(0.3)
        yield b"x" * (MAX_BODY // 4) + b'"]}'

    length = len(b'{"texts": ["') + MAX_BODY + len(b'"]}')
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", "/predict", body=slowly(), headers={"content-type": "application/json", "content-length": str(length)})
        response = connection.getresponse()
        assert response.status == 413 and "larger than" in json.loads(response.read())["detail"]
    finally:
        connection.close()


def test_a_client_that_waits_for_a_go_ahead_is_refused_before_it_sends_the_body(server):
    """`Expect: 100-continue` (curl's habit for large uploads): the 413 comes instead of the go-ahead."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as raw:
        raw.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {10 * MAX_BODY}\r\n"
            "expect: 100-continue\r\n\r\n".encode()
        )
        head = raw.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")


def test_on_a_cpu_the_server_keeps_several_small_batches_in_flight_unless_told_otherwise(model_dir):
    from mlbert.serving import CPU_BATCHING, GPU_BATCHING, batching_for_device, parse_args

    on_cpu = batching_for_device(parse_args(["--model", str(model_dir), "--device", "cpu"]))
    assert (on_cpu.max_batch_size, on_cpu.workers) == (CPU_BATCHING["max_batch_size"], CPU_BATCHING["workers"]) == (4, 4)
    told = batching_for_device(parse_args(["--model", str(model_dir), "--device", "cpu", "--workers", "1", "--max-batch-size", "32"]))
    assert (told.max_batch_size, told.workers) == (32, 1)
    if torch_sees_a_gpu():  # on a GPU, one big batch at a time, unless told otherwise
        on_gpu = batching_for_device(parse_args(["--model", str(model_dir), "--workers", "2"]))
        assert (on_gpu.max_batch_size, on_gpu.workers) == (GPU_BATCHING["max_batch_size"], 2)


def test_an_app_built_from_python_batches_for_where_its_model_runs(model_dir):
    # create_app() without limits: the batching the CLI would pick for the classifier's device.
    # Only /metadata is read, so a classifier relabelled as on a GPU stands in for one here.
    import asyncio
    from dataclasses import replace

    from mlbert.serving import CPU_BATCHING, GPU_BATCHING, create_app

    classifier = load(model_dir, backend="torch", device="cpu")
    for device, batching in (("cpu", CPU_BATCHING), ("cuda:0", GPU_BATCHING)):
        app = create_app(replace(classifier, device=device), model_dir).app  # inside the body-size limit
        metadata = next(route.endpoint for route in app.routes if getattr(route, "path", None) == "/metadata")
        limits = asyncio.run(metadata())["limits"]
        assert {key: limits[key] for key in batching} == batching, device


def test_a_wrong_method_or_path_keeps_its_usual_status(server):
    assert server.request("GET", "/predict") == (405, {"detail": "Method Not Allowed"})
    assert server.request("POST", "/no-such-path", b"{}") == (404, {"detail": "Not Found"})


def test_health_metadata_and_openapi_describe_the_service(server, model_dir):
    assert server.request("GET", "/health") == (200, {"status": "ok"})
    status, meta = server.request("GET", "/metadata")
    assert status == 200
    assert meta["labels"] == LABELS and meta["thresholds"] == {"anger": 0.5, "joy": pytest.approx(0.3)}
    assert meta["backend"] == "torch" and meta["limits"]["max_texts"] == MAX_TEXTS
    assert meta["batch_independent"] is True  # a text's answer does not depend on other requests
    assert meta["backend_texts_per_s"] is None  # the folder holds one backend: nothing was timed
    assert meta["device"] == ("cuda:0" if torch_sees_a_gpu() else "cpu")  # --device auto
    status, spec = server.request("GET", "/openapi.json")
    assert status == 200 and {"/predict", "/health", "/metadata"} <= set(spec["paths"])


def test_sigterm_answers_the_request_in_flight_before_exiting(model_dir):
    # A long batching wait, with room in the batch for more texts, keeps the request in flight
    # while the signal arrives.
    server = Server(model_dir, "--max-wait-ms", "5000", "--max-batch-size", "32")
    answer = {}
    try:
        client = threading.Thread(target=lambda: answer.update(result=server.predict({"texts": TEXTS})))
        client.start()
        time.sleep(1.5)  # the request is in the server, waiting for company
        server.process.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        code = server.process.wait(timeout=60)
        errors = server.output()
    finally:
        server.stop()
    status, body = answer["result"]
    assert status == 200 and [p["text"] for p in body["predictions"]] == TEXTS
    # uvicorn re-raises the signal once it has shut down cleanly, so a supervisor sees the usual
    # "terminated by SIGTERM"; what matters is that nothing failed on the way out.
    assert code in (0, -signal.SIGTERM) and "Traceback" not in errors, errors


@pytest.mark.parametrize("device", [[], ["--device", "cuda"]])
def test_a_folder_that_is_not_a_model_fails_in_one_line_before_listening(tmp_path, device):
    # Named as not a model folder, also when a GPU is asked for (not as a folder without a GPU backend).
    result = subprocess.run(
        [sys.executable, "-m", "mlbert.serving", "--model", str(tmp_path), "--port", str(free_port()), *device],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("serve: error: ") and str(tmp_path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-texts", "0"], "--max-texts must be at least 1"),
        (["--max-wait-ms", "-1"], "--max-wait-ms must be at least 0"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--max-batch-size", "0"], "--max-batch-size must be at least 1"),
        (["--graceful-timeout", "nan"], "--graceful-timeout must be at least 0"),
        (["--graceful-timeout", "-1"], "--graceful-timeout must be at least 0"),
    ],
)
def test_limits_out_of_range_are_refused_naming_the_flag(flags, message):
    result = subprocess.run([sys.executable, "-m", "mlbert.serving", *flags], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and message in result.stderr
