"""A separate virtual environment with Hugging Face Optimum's ONNX Runtime classes, as a user who
serves the exported folder with standard Hugging Face tools would have it.

Optimum's releases pin transformers < 4.58 while this project runs transformers 5, so the two
cannot share one environment; the test builds Optimum's own (pip, from the package index), once
per test session, and runs a short script in it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OPTIMUM_SPEC = "optimum-onnx[onnxruntime]"
TORCH_SPEC = "torch==2.13.0"  # what the Makefile installs: from the machine's own wheels where it has them

SCRIPT = """
import json, sys
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline

folder, texts = sys.argv[1], json.loads(sys.argv[2])
model = ORTModelForSequenceClassification.from_pretrained(folder, file_name="model.onnx")
classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder), top_k=None)
print(json.dumps([{row["label"]: row["score"] for row in rows} for rows in classify(texts, truncation=True)]))
"""


def optimum_python(folder: Path) -> Path:
    """The Python of a virtual environment in `folder` with Optimum installed (built if missing)."""
    python = folder / "bin" / "python"
    if not (folder / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        for spec in (TORCH_SPEC, OPTIMUM_SPEC):
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", spec], check=True)
        (folder / ".installed").write_text("ok\n")
    return python


def optimum_scores(python: Path, model_folder: Path, texts: list[str]) -> list[dict[str, float]]:
    """Per text, {label: probability} from Optimum's ORT model in a transformers pipeline."""
    result = subprocess.run(
        [str(python), "-c", SCRIPT, str(model_folder), json.dumps(texts)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
