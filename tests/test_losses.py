"""The multi-label losses against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from mlbert.losses import AsymmetricFocusing, label_correlation_loss, multilabel_loss, positive_class_weights


def test_positive_weights_are_negatives_over_positives_capped():
    labels = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    # label a: 3 pos / 2 neg -> 2/3; b: 1 / 4 -> 4, capped at 3; c: no positives -> the cap
    np.testing.assert_allclose(positive_class_weights(labels, cap=3.0), [2 / 3, 3.0, 3.0], rtol=1e-6)


def test_without_options_the_loss_is_plain_mean_bce():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert multilabel_loss(logits, labels).item() == pytest.approx(expected.item())


def test_pos_weight_scales_only_the_positive_terms():
    logits = torch.tensor([[0.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0]])
    # positive term log(2) * 3, negative term log(2); mean over the two cells
    loss = multilabel_loss(logits, labels, pos_weight=torch.tensor([3.0, 3.0]))
    assert loss.item() == pytest.approx((3 * math.log(2) + math.log(2)) / 2)


def test_label_correlation_loss_averages_exp_of_negative_minus_positive():
    logits = torch.tensor([[0.0, math.log(3.0), -math.log(3.0)]])  # probabilities 0.5, 0.75, 0.25
    labels = torch.tensor([[0.0, 1.0, 0.0]])
    # pairs (positive 0.75, negatives 0.5 and 0.25): mean of exp(0.5-0.75), exp(0.25-0.75)
    expected = (math.exp(-0.25) + math.exp(-0.5)) / 2
    assert label_correlation_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_examples_without_a_positive_or_a_negative_add_no_correlation_term():
    logits = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    labels = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert label_correlation_loss(logits, labels).item() == 0.0


def test_the_correlation_weight_mixes_the_two_losses():
    logits = torch.tensor([[0.3, -0.2, 1.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    bce = multilabel_loss(logits, labels)
    lca = label_correlation_loss(logits, labels)
    assert multilabel_loss(logits, labels, correlation_weight=0.2).item() == pytest.approx(
        (0.8 * bce + 0.2 * lca).item()
    )


ZERO_FOCUSING = AsymmetricFocusing(gamma_negative=0.0, gamma_positive=0.0, clip=0.0)


def test_the_asymmetric_loss_without_focusing_or_clip_is_bce():
    logits = torch.tensor([[2.0, -1.0, 30.0], [0.5, 0.0, -30.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    expected = multilabel_loss(logits, labels, pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    loss = multilabel_loss(logits, labels, pos_weight=torch.tensor([1.0, 2.0, 3.0]), focusing=ZERO_FOCUSING)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_asymmetric_focusing_scales_each_term_as_written_in_the_paper():
    # p = 0.75 for a present label and for an absent one
    logits = torch.tensor([[math.log(3.0), math.log(3.0)]])
    labels = torch.tensor([[1.0, 0.0]])
    focusing = AsymmetricFocusing(gamma_negative=2.0, gamma_positive=1.0, clip=0.05)
    present = -((1 - 0.75) ** 1) * math.log(0.75)
    shifted = 0.75 - 0.05
    absent = -(shifted**2) * math.log(1 - shifted)
    assert multilabel_loss(logits, labels, focusing=focusing).item() == pytest.approx((present + absent) / 2, rel=1e-5)


def test_an_absent_label_below_the_clip_costs_nothing_and_has_no_gradient():
    logits = torch.tensor([[-4.0]], requires_grad=True)  # p = 0.018 < clip 0.05
    loss = multilabel_loss(logits, torch.tensor([[0.0]]), focusing=AsymmetricFocusing())
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.item() == 0.0


def test_focusing_shifts_the_loss_toward_the_positives_of_a_rare_label():
    # one present label among nine easy absent ones: BCE gives the positive a small share of the
    # gradient, ASL most of it
    logits = torch.tensor([[-1.0] + [-3.0] * 9], requires_grad=True)
    labels = torch.tensor([[1.0] + [0.0] * 9])

    def positive_share(focusing):
        logits.grad = None
        multilabel_loss(logits, labels, focusing=focusing).backward()
        grad = logits.grad.abs()[0]
        return (grad[0] / grad.sum()).item()

    assert positive_share(None) < 0.8 < positive_share(AsymmetricFocusing())


def test_the_asymmetric_loss_is_finite_for_extreme_logits():
    logits = torch.tensor([[80.0, -80.0, 80.0, -80.0]], requires_grad=True)
    labels = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    loss = multilabel_loss(logits, labels, focusing=AsymmetricFocusing(gamma_positive=1.0))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
