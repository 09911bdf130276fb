"""The label-aware head (`model.head: label_aware`), after SpanEmo (Alhuzali & Ananiadou, 2021).

The model reads `[CLS] anger anticipation ... trust [SEP] <text> [SEP]` and scores each label
from the hidden states of its own name's tokens with one shared linear layer, so attention can
relate each label to the words that evoke it. The label segment is added inside `forward`:
inputs are tokenized exactly as for the plain head, and the same tokenizer, collator, `predict`
and ONNX export serve both.

It is a plain `torch.nn.Module` around `AutoModel` (any BERT-family encoder); its folder holds
the encoder's config.json with the prompt under MLBERT_KEYS and one model.safetensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import LabelError

HEAD_KEY = "mlbert_head"
PROMPT_KEY = "mlbert_label_prompt"
LABEL_AWARE = "label_aware"


def label_prompt(tokenizer: Any, labels: Sequence[str]) -> dict[str, Any]:
    """The label segment's token ids and, per label, which of those tokens spell its name.

    Returns {"input_ids": [...], "label_tokens": [[positions of label 0], ...], "text_type_id": int}.
    Underscores in label names become spaces; a name split into word pieces uses all of them.
    """
    names = [str(label).replace("_", " ") for label in labels]
    text = " ".join(names)
    encoded = tokenizer(text, return_offsets_mapping=True)
    starts, position = [], 0
    for name in names:
        starts.append((position, position + len(name)))
        position += len(name) + 1
    label_tokens = [
        [k for k, (a, b) in enumerate(encoded["offset_mapping"]) if b > a >= start and b <= end]
        for start, end in starts
    ]
    empty = [label for label, tokens in zip(labels, label_tokens) if not tokens]
    if empty:
        raise LabelError(f"model.head label_aware: the tokenizer gives no tokens for label(s) {empty}")
    return {"input_ids": list(encoded["input_ids"]), "label_tokens": label_tokens, "text_type_id": 1}


class LabelAwareClassifier(nn.Module):
    """Encoder + label segment + one shared scorer; `forward` returns logits (batch, labels)."""

    def __init__(self, encoder: nn.Module, prompt: dict[str, Any]):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        ids = torch.tensor(prompt["input_ids"], dtype=torch.long)
        pooling = torch.zeros(len(prompt["label_tokens"]), len(ids))
        for j, tokens in enumerate(prompt["label_tokens"]):
            pooling[j, tokens] = 1.0 / len(tokens)
        # Derived from config.json on load, so not saved with the weights.
        self.register_buffer("prompt_ids", ids, persistent=False)
        self.register_buffer("pooling", pooling, persistent=False)
        self.uses_token_types = getattr(encoder.config, "type_vocab_size", 1) > 1
        self.text_type_id = int(prompt["text_type_id"]) if self.uses_token_types else 0
        self.dropout = nn.Dropout(getattr(encoder.config, "hidden_dropout_prob", 0.1))
        self.scorer = nn.Linear(encoder.config.hidden_size, 1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,  # named so that the Trainer passes labels through
    ) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        batch, prompt_length = input_ids.shape[0], self.prompt_ids.shape[0]
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        text = input_ids[:, 1:]  # the text's own [CLS] is replaced by the prompt's
        ids = torch.cat([self.prompt_ids.unsqueeze(0).expand(batch, -1), text], dim=1)
        mask = torch.cat([attention_mask.new_ones(batch, prompt_length), attention_mask[:, 1:]], dim=1)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if self.uses_token_types:
            inputs["token_type_ids"] = torch.cat(
                [torch.zeros_like(ids[:, :prompt_length]), torch.full_like(text, self.text_type_id)], dim=1
            )
        hidden = self.encoder(**inputs).last_hidden_state[:, :prompt_length]
        label_states = torch.einsum("lp,bph->blh", self.pooling.to(hidden.dtype), hidden)
        logits = self.scorer(self.dropout(label_states)).squeeze(-1)
        return SequenceClassifierOutput(logits=logits)


def build_label_aware(encoder: nn.Module, tokenizer: Any, labels: Sequence[str]) -> LabelAwareClassifier:
    """A fresh label-aware classifier on a pretrained encoder, label maps set in its config."""
    config = encoder.config
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "multi_label_classification"
    prompt = label_prompt(tokenizer, labels)
    setattr(config, HEAD_KEY, LABEL_AWARE)
    setattr(config, PROMPT_KEY, prompt)
    return LabelAwareClassifier(encoder, prompt)


def is_label_aware(config: Any) -> bool:
    return getattr(config, HEAD_KEY, None) == LABEL_AWARE


def save_label_aware_config(model: LabelAwareClassifier, folder: str | Path) -> None:
    """Write config.json beside the weights the Trainer saved (it saves a plain module's state only)."""
    model.config.save_pretrained(str(folder))


def load_label_aware(folder: str | Path, config: Any) -> LabelAwareClassifier:
    """Rebuild a saved label-aware classifier from its config.json and model.safetensors."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    model = LabelAwareClassifier(AutoModel.from_config(config), getattr(config, PROMPT_KEY))
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
    return model.eval()
