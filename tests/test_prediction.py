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
