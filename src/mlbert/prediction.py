"""Turning texts into label probabilities and label sets: evaluate, export, `predict` and `load()`.

    from mlbert import load

    classifier = load("models/export")               # the fastest backend the folder has
    classifier.predict(["What a day!"])              # [{"labels": [...], "scores": {...}}]
    load("models/export", backend="torch").predict_proba(texts)   # (n, labels) probabilities

Backends: `torch` (safetensors weights, fp32 eager, on the CPU or a GPU), `onnx` (model.onnx, fp32 on onnxruntime),
`onnx-int8` (model.int8.onnx, dynamic int8 on onnxruntime) and `openvino-int8` (openvino_model.xml,
static int8 on OpenVINO). All share the tokenizer, the batching and the thresholds, so they differ
only in the forward pass. `device` (devices.py) says where the torch backend runs: by default a
GPU when PyTorch sees one; the other backends run on the CPU.
"""

from __future__ import annotations

import json
import numbers
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend_choice import Forward, Runner, auto_backend
from .devices import AUTO, CPU, GPU_BACKENDS, available_cores, device_for_backend
from .errors import ModelFolderError
from .labels import config_labels
from .manifest import check_files, read_manifest
from .metrics import sigmoid
from .normalise import IDENTITY, from_config, normalise_texts
from .onnx_export import INT8_FILE, ONNX_FILE
from .openvino_export import OPENVINO_FILE, openvino_forward
from .params import NormaliseParams
from .paths import THRESHOLDS_NAME

# The file each backend reads. `load()` without a backend times those the folder holds and takes
# the fastest on this machine (backend_choice.py): no fixed order is fastest on every CPU.
BACKEND_FILES = {
    "openvino-int8": OPENVINO_FILE,
    "onnx-int8": INT8_FILE,
    "onnx": ONNX_FILE,
    "torch": "model.safetensors",
}
INT8_BACKENDS = ("openvino-int8", "onnx-int8")
BACKENDS = tuple(BACKEND_FILES)
# onnxruntime's dynamic int8 scales each batch's activations by that batch's own range, so a
# text's probabilities move with whatever else shares its batch (one test tweet in ten changes
# label set: docs/serving.md). The other backends give a text the same answer in any batch, up to
# float rounding (OpenVINO's int8 scales were fixed at export).
BATCH_DEPENDENT_BACKENDS = ("onnx-int8",)

# A bar of batches on stderr, or a callback told how many texts each batch finished.
Progress = bool | Callable[[int], object]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of similar length, so that per-batch padding stays short."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def predict_probabilities(
    forward: Forward,
    tokenizer: Any,
    texts: Sequence[str],
    num_labels: int,
    batch_size: int = 32,
    progress: Progress = False,
    batches_at_once: int = 1,
) -> np.ndarray:
    """Sigmoid probabilities, shape (len(texts), num_labels), in the order of `texts`.

    Truncation uses the tokenizer's `model_max_length`, which the train stage sets to
    `tokenize.max_length`. `progress`: a bar of batches on stderr (true), or a function called
    with the number of texts each batch finished (a caller's own bar over many calls).
    `batches_at_once` > 1 keeps that many forward passes running in threads (a runtime with that
    many streams, such as OpenVINO's throughput mode); the probabilities are the same either way.
    """
    from tqdm.auto import tqdm

    check_count(batch_size, "batch_size")
    if len(texts) == 0:
        return np.zeros((0, num_labels), dtype=np.float32)
    encoded = tokenizer(list(texts), truncation=True)
    names = list(encoded.keys())
    probabilities = np.zeros((len(texts), num_labels), dtype=np.float32)
    batches = length_sorted_batches([len(ids) for ids in encoded["input_ids"]], batch_size)
    with tqdm(total=len(batches), desc="predict", unit="batch", disable=progress is not True) as bar:

        def padded(rows: np.ndarray) -> dict[str, np.ndarray]:
            batch = tokenizer.pad({name: [encoded[name][i] for i in rows] for name in names}, return_tensors="np")
            return {name: np.asarray(batch[name], dtype=np.int64) for name in names}

        def finish(rows: np.ndarray, logits: np.ndarray) -> None:
            probabilities[rows] = sigmoid(logits)
            bar.update()
            if callable(progress):
                progress(len(rows))

        if batches_at_once <= 1 or len(batches) <= 1:
            for rows in batches:
                finish(rows, forward(padded(rows)))
            return probabilities
        # Padding stays on this thread (the tokenizer is not shared across threads); at most
        # `batches_at_once` passes wait or run at a time, so memory stays that of a few batches.
        with ThreadPoolExecutor(batches_at_once, thread_name_prefix="mlbert-forward") as pool:
            running: deque[tuple[np.ndarray, Future]] = deque()
            for rows in batches:
                running.append((rows, pool.submit(forward, padded(rows))))
                if len(running) >= batches_at_once:
                    done, future = running.popleft()
                    finish(done, future.result())
            for done, future in running:
                finish(done, future.result())
    return probabilities


@dataclass
class Classifier:
    """A model folder loaded with one backend, ready to label texts."""

    forward: Forward
    tokenizer: Any
    labels: list[str]
    thresholds: np.ndarray
    backend: str
    model: Any = None  # the torch module, for the torch backend
    normalise: NormaliseParams = IDENTITY  # what the model was trained on: applied to every text
    # How `auto` chose the backend: texts/s per backend and whether cached (empty: named by the caller).
    choice: dict[str, Any] = field(default_factory=dict)
    device: str = CPU  # where the forward pass runs: cpu, or cuda:N for the torch backend
    # Forward passes run at the same time over a long list: OpenVINO's streams; 1 for the others.
    batches_at_once: int = 1

    @property
    def batch_independent(self) -> bool:
        """Whether a text's answer stays the same whatever else shares its batch."""
        return self.backend not in BATCH_DEPENDENT_BACKENDS

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32, progress: Progress = False) -> np.ndarray:
        """Probabilities for the raw `texts` (any iterable of str; none: shape (0, labels)),
        normalised first exactly as the training texts were."""
        texts = normalise_texts(checked_texts(texts), self.normalise)
        return predict_probabilities(
            self.forward, self.tokenizer, texts, len(self.labels), batch_size, progress, self.batches_at_once
        )

    def predict(self, texts: Sequence[str], batch_size: int = 32, progress: Progress = False) -> list[dict]:
        """For each text: the labels at or above their threshold and every label's probability."""
        return self.decide(self.predict_proba(texts, batch_size, progress))

    def decide(self, probabilities: np.ndarray) -> list[dict]:
        return [
            {
                "labels": [label for label, p, t in zip(self.labels, row, self.thresholds) if p >= t],
                "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row)},
            }
            for row in probabilities
        ]


def check_count(value: Any, name: str) -> None:
    """ValueError unless `value` is a whole number (numpy's too, not a bool) of at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def checked_texts(texts: Any) -> list[str]:
    """`texts` as a list of str; TypeError for one str (which would be labelled a character at a
    time) or an item that is not a str, naming its position."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a list of texts, not one {type(texts).__name__}: write predict([text])")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is not a str but {type(text).__name__} {text!r:.40}")
    return texts


def available_backends(folder: str | Path) -> list[str]:
    """The backends whose files `folder` holds (int8 first, as BACKEND_FILES lists them)."""
    return [name for name, file in BACKEND_FILES.items() if (Path(folder) / file).is_file()]


def load(
    folder: str | Path,
    backend: str | None = None,
    threads: int | None = None,
    concurrency: int | None = None,
    device: str = AUTO,
    batch_independent: bool = False,
) -> Classifier:
    """Load an exported folder (or a trained model folder) with `backend`; None or "auto": the
    backend the folder holds that is fastest on this machine, timed on first use and then cached
    (backend_choice.py). `concurrency` is how many threads may call the forward pass at once (a
    server's model workers; OpenVINO compiles that many streams, at most one per core); None: what
    labels a long list fastest (OpenVINO's throughput mode, which `predict_proba` keeps busy with
    several batches at once). `threads`: CPU threads for one forward pass when `concurrency` is
    given (left None, the cores are shared among the passes), else a cap on all the model's threads
    (OpenVINO's throughput mode then fits its streams inside it). `device`: where the torch
    backend runs (devices.py); with a GPU, `auto` loads the torch backend there, untimed, since
    no CPU runtime comes near a GPU. `batch_independent`: `auto` leaves out the backends whose
    answer for a text depends on its batch-mates (BATCH_DEPENDENT_BACKENDS), unless the folder
    holds nothing else; a backend named explicitly is loaded as asked."""
    from transformers import AutoConfig, AutoTokenizer

    from .launch import visible_gpus

    folder = Path(folder)
    threads = usable_threads(threads)
    if concurrency is not None:
        check_count(concurrency, "concurrency")
    if folder.is_file():
        raise FileNotFoundError(f"{folder} is a file; name the model folder that holds it")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json); run `dvc repro` first")
    present = available_backends(folder)
    auto = backend in (None, "auto")
    if not auto and backend not in BACKEND_FILES:
        raise ValueError(f"unknown backend {backend!r}; expected auto or one of {', '.join(BACKENDS)}")
    if not present:
        raise FileNotFoundError(f"{folder} holds no model file ({', '.join(BACKEND_FILES.values())})")
    if not auto and backend not in present:
        raise FileNotFoundError(
            f"backend {backend}: {folder / BACKEND_FILES[backend]} not found (this folder has: {', '.join(present)})"
        )
    device = device_for_backend(device, None if auto else backend, present, visible_gpus())
    manifest = read_manifest(folder)
    if manifest is not None:
        # Every file the export wrote, whichever backend reads it, must still be the one written:
        # a folder whose backends would answer as two different models is refused whole. The
        # model card is prose and may be edited.
        check_files(folder, manifest, [name for name in manifest["files"] if name != "README.md"])
    # Never run Python files a folder ships: without the explicit switch, transformers asks on
    # the terminal, and a "y" there would run them.
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    labels = config_labels(config)
    thresholds = read_thresholds(folder, labels, required=manifest is not None)  # cheap: before the weights
    normalise = from_config(config, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    check_vocabulary(folder, tokenizer, config)

    def build(name: str) -> Runner:
        return _runner(folder, name, config, threads, concurrency, device)

    choice: dict[str, Any] = {}
    built: dict[str, Runner] = {}
    if auto and device != CPU:
        backend, choice = GPU_BACKENDS[0], {"gpu": device}
    elif auto:
        candidates = auto_candidates(present, batch_independent)
        backend, choice, built = auto_backend(folder, candidates, BACKEND_FILES, tokenizer, build, threads, concurrency)
    runner = built[backend] if backend in built else build(backend)
    return Classifier(
        runner.forward, tokenizer, labels, thresholds, backend, runner.model, normalise, choice,
        device=device, batches_at_once=runner.batches_at_once,
    )  # fmt: skip


def auto_candidates(present: Sequence[str], batch_independent: bool) -> list[str]:
    """The backends `auto` chooses among: those present, less the batch-dependent ones when the
    answers must not depend on batch-mates (and something else is there to run)."""
    if not batch_independent:
        return list(present)
    steady = [name for name in present if name not in BATCH_DEPENDENT_BACKENDS]
    if not steady:
        warnings.warn(
            f"backend auto: only {', '.join(present)} here, whose answers depend on the other texts of a batch",
            stacklevel=3,
        )
    return steady or list(present)


def check_vocabulary(folder: Path, tokenizer: Any, config: Any) -> None:
    """ModelFolderError if the tokenizer cannot be the model's: far fewer tokens than the model's
    embedding table (transformers builds a near-empty tokenizer when tokenizer.json is missing,
    and every word would become [UNK]), or ids beyond the table."""
    size, known = getattr(config, "vocab_size", None), len(tokenizer)
    if not size:
        return
    if known < size // 2 or known > size:
        raise ModelFolderError(
            f"{folder}: the tokenizer has {known} tokens but the model's vocabulary has {size}; "
            "a tokenizer file (tokenizer.json) is missing or belongs to another model: export the model again"
        )


def usable_threads(threads: int | None) -> int | None:
    """`threads` checked, and at most the cores this process may use: more would only make the
    threads take turns, and each onnxruntime or PyTorch thread costs memory (100,000 asked for
    took 16 GB before answering)."""
    if threads is None:
        return None
    check_count(threads, "threads")
    cores = available_cores()
    if threads > cores:
        warnings.warn(f"threads={threads} is more than the {cores} cores this process may use; using {cores}", stacklevel=3)
        return cores
    return threads


def _runner(
    folder: Path, backend: str, config: Any, threads: int | None, concurrency: int | None, device: str
) -> Runner:
    """One backend of `folder`, loaded."""
    at_once = 1
    if backend != "openvino-int8" and device == CPU:  # OpenVINO shares its threads among its streams itself
        threads, at_once = share_cores(threads, concurrency, available_cores())
    try:
        if backend == "torch":
            model = load_torch_model(folder, config).to(device)
            return Runner(torch_forward(model, threads), model, batches_at_once=at_once)
        if backend == "openvino-int8":
            forward, streams = openvino_forward(folder / OPENVINO_FILE, threads, streams=concurrency)
            return Runner(forward, batches_at_once=streams)
        return Runner(onnx_forward(folder / BACKEND_FILES[backend], threads), batches_at_once=at_once)
    except Exception as error:  # safetensors, onnxruntime and OpenVINO have their own error types
        raise ModelFolderError(
            f"{folder / BACKEND_FILES[backend]} cannot be loaded ({type(error).__name__}: {str(error)[:300]}); "
            "the file is damaged or incomplete: export the model again"
        ) from error


def share_cores(threads: int | None, concurrency: int | None, cores: int) -> tuple[int | None, int]:
    """For onnxruntime or PyTorch on the CPU: the threads of one forward pass, and how many passes
    a long list runs at once (what `auto` times too, so that it compares these backends with
    OpenVINO's streams on the same cores).

    Threads: as asked; else, with several passes at once (`concurrency`, a server's workers), the
    cores shared among them, at least one each, since each pass would otherwise start a thread
    per core and the passes would fight over the cores (onnx-int8 under load with four workers:
    279 texts/s with two threads each, 338 with one; docs/serving.md); else None, the runtime's
    own default. Passes at once: as many as fill the cores, at most `concurrency`."""
    if not concurrency or concurrency <= 1:
        return threads, 1
    if threads is None:
        threads = max(1, cores // concurrency)
    return threads, max(1, min(concurrency, cores // threads))


def load_classifier(folder: str | Path) -> Classifier:
    """The PyTorch backend: what evaluate scores and what ONNX parity is checked against. Its
    callers use the probabilities and fit thresholds themselves, so a trained folder without
    thresholds.json is expected here and not warned about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*thresholds\.json not found")
        return load(folder, backend="torch")


def load_torch_model(folder: Path, config: Any, attn_implementation: str | None = None) -> Any:
    """The fine-tuned torch module in eval mode: plain or label-aware head, safetensors only."""
    from transformers import AutoModelForSequenceClassification

    from .label_aware import is_label_aware, load_label_aware

    if attn_implementation:
        config._attn_implementation = attn_implementation
    if is_label_aware(config):
        return load_label_aware(folder, config)
    return AutoModelForSequenceClassification.from_pretrained(
        folder, config=config, use_safetensors=True, trust_remote_code=False,
        use_kernels=False,  # the layers it was exported with, never Hub kernels (modeling.NO_HUB_KERNELS)
    ).eval()  # fmt: skip


def torch_forward(model: Any, threads: int | None = None) -> Forward:
    import torch

    if threads:
        torch.set_num_threads(threads)
    device = next(model.parameters()).device

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            inputs = {name: torch.from_numpy(values).to(device) for name, values in batch.items()}
            return model(**inputs).logits.float().cpu().numpy()

    return forward


def onnx_forward(path: Path, threads: int | None = None) -> Forward:
    from .onnx_export import onnx_session

    return session_forward(onnx_session(path, threads))


def session_forward(session: Any) -> Forward:
    """Logits from an onnxruntime session, fed the batch entries the graph takes."""
    wanted = [item.name for item in session.get_inputs()]

    def forward(batch: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(["logits"], {name: batch[name] for name in wanted})[0]

    return forward


def read_thresholds(folder: Path, labels: Sequence[str], required: bool = False) -> np.ndarray:
    """Per-label decision thresholds from `thresholds.json`. Absent from a folder that is not an
    export (`required` false): 0.5 for every label, with a warning."""
    path = folder / THRESHOLDS_NAME
    if not path.is_file():
        if required:
            raise ModelFolderError(f"{path} is missing")
        warnings.warn(f"{path} not found: every label uses the threshold 0.5", stacklevel=2)
        return np.full(len(labels), 0.5, dtype=np.float32)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        per_label = saved.get("per_label") or {}
        unknown = sorted(set(per_label) - set(labels))
        if unknown:  # a threshold for a label the model lacks: thresholds.json is another model's
            raise ModelFolderError(f"{path}: per_label names label(s) {unknown} that the model does not have ({', '.join(labels)})")
        values = [per_label[label] if label in per_label else saved["default"] for label in labels]
        thresholds = np.array(values, dtype=np.float32)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelFolderError(
            f"{path} is not a thresholds file ({type(error).__name__}: {error}); expected JSON with a "
            '"default" threshold and optional "per_label" thresholds'
        ) from error
    if not np.all((thresholds > 0) & (thresholds < 1)):
        raise ModelFolderError(f"{path}: every threshold must be a number in (0, 1)")
    return thresholds
