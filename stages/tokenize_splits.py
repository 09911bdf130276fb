"""tokenize: encode the prepared splits with the model's tokenizer (truncated, unpadded).

(Not named tokenize.py: a script of that name would shadow the standard library module.)

Output: data/tokenized (a datasets DatasetDict saved to disk, plus labels.json).
"""

import shutil
from pathlib import Path

from mlbert.data import LABELS_FILE, read_splits
from mlbert.encoding import encode_splits
from mlbert.modeling import load_tokenizer, model_source
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.stage import run_stage

INPUT_DIR = Path("data/prepared")
OUTPUT_DIR = "data/tokenized"


def main() -> str:
    params = load_params()
    tokenizer = load_tokenizer(model_source(params.model), params.tokenize.max_length)
    splits = read_splits(INPUT_DIR)
    encoded = encode_splits(splits, tokenizer)
    with atomic_dir(OUTPUT_DIR) as staging:
        encoded.save_to_disk(str(staging))
        shutil.copy(INPUT_DIR / LABELS_FILE, staging / LABELS_FILE)
    truncated = sum(
        sum(len(ids) >= params.tokenize.max_length for ids in dataset["input_ids"])
        for dataset in encoded.values()
    )
    return f"encoded {sum(map(len, encoded.values()))} texts ({truncated} truncated) -> {OUTPUT_DIR}"


if __name__ == "__main__":
    run_stage("tokenize", main)
