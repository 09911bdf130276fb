"""predict_probabilities: batches of similar length go through the model, rows come back in input order."""

import numpy as np

from mlbert.prediction import predict_probabilities

# Token counts with [CLS] and [SEP]: 32, 3, 9, 14, 4 (in batches of 2 by length: texts 1+4, 2+3, 0).
TEXTS = ["a " * 30, "hi", "one two three four five six seven", "x " * 12, "hello there"]


def length_forward(seen):
    """A forward pass whose logits say how long each (unpadded) row is: label 0 gets +length/10,
    label 1 gets -length/10."""

    def forward(batch):
        lengths = batch["attention_mask"].sum(axis=1)
        seen.append(lengths.tolist())
        return np.stack([lengths / 10, -lengths / 10], axis=1)

    return forward


def test_probabilities_come_back_in_the_order_of_the_texts(tokenizer):
    seen = []
    probabilities = predict_probabilities(length_forward(seen), tokenizer, TEXTS, num_labels=2, batch_size=2)
    assert seen == [[3, 4], [9, 14], [32]]  # the model saw them by length, not in input order
    lengths = np.array([32, 3, 9, 14, 4])
    expected = 1 / (1 + np.exp(-np.stack([lengths / 10, -lengths / 10], axis=1)))
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)


def test_several_batches_at_once_give_the_same_rows_in_the_same_order(tokenizer):
    alone = predict_probabilities(length_forward([]), tokenizer, TEXTS, num_labels=2, batch_size=2)
    at_once = predict_probabilities(length_forward([]), tokenizer, TEXTS, num_labels=2, batch_size=2, batches_at_once=2)
    np.testing.assert_array_equal(at_once, alone)


def test_no_more_batches_run_at_once_than_asked(tokenizer):
    import threading
    import time

    lock, running, most = threading.Lock(), [0], [0]

    def slow_forward(batch):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)  # long enough that a third call would overlap if one were let through
        with lock:
            running[0] -= 1
        return np.zeros((len(batch["input_ids"]), 2), dtype=np.float32)

    predict_probabilities(slow_forward, tokenizer, TEXTS * 4, num_labels=2, batch_size=2, batches_at_once=2)
    assert most[0] == 2


def test_progress_counts_every_text_once_with_batches_at_once(tokenizer):
    done = []
    predict_probabilities(length_forward([]), tokenizer, TEXTS * 3, 2, batch_size=2, progress=done.append, batches_at_once=3)
    assert sum(done) == len(TEXTS) * 3


def tiny_classifier_folder(tmp_path, tokenizer):
    from tiny_models import write_tiny_classifier_folder

    return write_tiny_classifier_folder(tmp_path / "model", tokenizer, ["anger", "joy"])


def test_no_texts_give_no_rows_and_bad_batch_sizes_are_named(tokenizer):
    import pytest

    assert predict_probabilities(length_forward([]), tokenizer, [], num_labels=2).shape == (0, 2)
    for batch_size in (0, -1, 2.5, True):  # -1 used to return all-zero probabilities
        with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
            predict_probabilities(length_forward([]), tokenizer, ["a text"], num_labels=2, batch_size=batch_size)
    assert predict_probabilities(length_forward([]), tokenizer, ["a", "b"], num_labels=2, batch_size=np.int64(1)).shape == (2, 2)


def test_one_string_or_a_non_string_item_is_a_type_error_not_labelled(tmp_path, tokenizer):
    import pytest

    from mlbert.prediction import load

    classifier = load(tiny_classifier_folder(tmp_path, tokenizer), backend="torch")
    with pytest.raises(TypeError, match=r"not one str: write predict\(\[text\]\)"):
        classifier.predict("hello")  # would label five one-letter texts
    with pytest.raises(TypeError, match=r"texts\[1\] is not a str but NoneType None"):
        classifier.predict_proba(["fine", None])
    assert classifier.predict([]) == [] and classifier.predict_proba(iter(["a", "b"])).shape == (2, 2)


def test_bad_load_arguments_are_named(tmp_path, tokenizer):
    import pytest

    from mlbert.prediction import load

    folder = tiny_classifier_folder(tmp_path, tokenizer)
    for concurrency in (0, -3, 2.5, "4"):
        with pytest.raises(ValueError, match="concurrency must be a whole number of at least 1"):
            load(folder, backend="torch", concurrency=concurrency)
    with pytest.raises(FileNotFoundError, match="config.json is a file; name the model folder that holds it"):
        load(folder / "config.json")
