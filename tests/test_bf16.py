"""`train.bf16: auto` on a CPU: a timed probe of both precisions that leaves no trace on training."""

import torch
from tiny_models import tiny_config

from mlbert.bf16 import BF16_MIN_SPEEDUP, SPEED_FLAGS, choose_bf16, machine_summary, probe_bf16


def tiny_classifier(seed: int):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(num_labels=3, problem_type="multi_label_classification"))


def test_bf16_is_chosen_only_when_clearly_faster():
    assert choose_bf16(fp32_samples_per_s=40.0, bf16_samples_per_s=40.0 * BF16_MIN_SPEEDUP)
    assert not choose_bf16(fp32_samples_per_s=40.0, bf16_samples_per_s=42.0)  # within noise: fp32
    assert not choose_bf16(fp32_samples_per_s=56.3, bf16_samples_per_s=28.5)  # the slow-bf16 Xeon


def test_the_probe_measures_both_precisions_and_leaves_weights_gradients_and_rng_alone():
    model = tiny_classifier(seed=3)
    model.eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    batch = {"input_ids": torch.randint(5, 90, (4, 12)), "attention_mask": torch.ones(4, 12, dtype=torch.long)}
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)

    # Never cut short (that path has its own test below): on a CPU without bf16 units the emulated
    # warm-up step can be 4x slower than fp32 and would end the probe before any timed step.
    probe = probe_bf16(model, batch, steps=2, give_up_slowdown=float("inf"))

    assert torch.equal(torch.rand(3), expected_draw)  # dropout in the probe did not shift training's draws
    assert set(probe) == {"fp32_samples_per_s", "bf16_samples_per_s", "timed_steps"} and probe["timed_steps"] == 2
    assert min(probe["fp32_samples_per_s"], probe["bf16_samples_per_s"]) > 0
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())
    assert not model.training  # its mode is restored


def test_a_hopelessly_slow_bf16_step_ends_the_probe_and_still_leaves_no_trace():
    model = tiny_classifier(seed=3)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    batch = {"input_ids": torch.randint(5, 90, (4, 12)), "attention_mask": torch.ones(4, 12, dtype=torch.long)}

    # Any bf16 step counts as hopeless at a slowdown bound of 0: the warm-up step is the last.
    probe = probe_bf16(model, batch, steps=3, give_up_slowdown=0.0)

    assert probe["timed_steps"] == 0 and min(probe["fp32_samples_per_s"], probe["bf16_samples_per_s"]) > 0
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters()) and model.training


def test_the_probe_times_every_step_when_bf16_keeps_up():
    probe = probe_bf16(tiny_classifier(seed=3), {"input_ids": torch.randint(5, 90, (4, 12))}, steps=2, give_up_slowdown=1e9)
    assert probe["timed_steps"] == 2


def test_the_machine_summary_names_the_cpu_and_only_the_flags_that_matter():
    summary = machine_summary()
    assert set(summary) == {"cpu", "cpu_flags", "torch_threads", "gpu"}
    assert summary["cpu"] and summary["torch_threads"] >= 1
    assert summary["cpu_flags"].startswith("none of") or set(summary["cpu_flags"].split()) <= set(SPEED_FLAGS)
