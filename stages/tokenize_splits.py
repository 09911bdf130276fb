"""tokenize: encode the prepared splits with the model's tokenizer (truncated, unpadded).

(Not named tokenize.py: a script of that name would shadow the standard library module.)

Output: data/tokenized (a datasets DatasetDict saved to disk, plus labels.json and
normalise.json: the text normalisation applied, which train records in the model's config).
"""

import json
from dataclasses import asdict

from mlbert.data import read_splits
from mlbert.encoding import count_truncated, encode_splits
from mlbert.modeling import load_tokenizer, resolve_model
from mlbert.outputs import atomic_dir
from mlbert.params import load_params
from mlbert.paths import LABELS_NAME, NORMALISE_NAME, PREPARED_DIR, TOKENIZED_DIR
from mlbert.stage import run_stage


def main() -> str:
    params = load_params()
    # Only what decides the tokens (normalise, the tokenizer, max_length): model.head and
    # model.allow_pickle_weights do not, so they are not declared for this stage in dvc.yaml
    # and changing them does not rerun it.
    source = resolve_model(params.model.name, trust_remote_code=params.model.trust_remote_code)
    tokenizer = load_tokenizer(source, params.tokenize.max_length)
    splits = read_splits(PREPARED_DIR)
    encoded = encode_splits(splits, tokenizer, params.normalise)
    with atomic_dir(TOKENIZED_DIR) as staging:
        encoded.save_to_disk(str(staging))
        (staging / LABELS_NAME).write_bytes((PREPARED_DIR / LABELS_NAME).read_bytes())
        (staging / NORMALISE_NAME).write_text(json.dumps(asdict(params.normalise), indent=2) + "\n", encoding="utf-8")
    truncated = count_truncated(encoded, params.tokenize.max_length)
    return f"encoded {sum(map(len, encoded.values()))} texts ({truncated} truncated) -> {TOKENIZED_DIR}"


if __name__ == "__main__":
    run_stage("tokenize", main)
