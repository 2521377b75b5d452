import math

import pytest
import torch
import torch.nn.functional as F

from skinscan_engine.model import CLASSES
from skinscan_training.losses import malignant_vs_benign_nll, training_loss

MEL, NV = CLASSES.index("mel"), CLASSES.index("nv")


def test_the_binary_term_is_minus_log_p_malignant_for_malignant_labels() -> None:
    logits = torch.randn(4, len(CLASSES), generator=torch.Generator().manual_seed(0))
    p = logits.softmax(1)
    p_mal = p[:, [CLASSES.index(c) for c in ("mel", "bcc", "akiec")]].sum(1)
    labels = torch.tensor([MEL, NV, MEL, NV])
    expected = -(torch.log(p_mal[[0, 2]]).sum() + torch.log(1 - p_mal[[1, 3]]).sum()) / 4
    assert malignant_vs_benign_nll(logits, labels).item() == pytest.approx(expected.item(), 1e-5)


def test_probability_targets_give_the_same_term_as_their_labels() -> None:
    logits = torch.randn(3, len(CLASSES), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([MEL, NV, CLASSES.index("bcc")])
    one_hot = F.one_hot(labels, len(CLASSES)).float()
    assert malignant_vs_benign_nll(logits, one_hot).item() == pytest.approx(
        malignant_vs_benign_nll(logits, labels).item(), 1e-6
    )


def test_the_binary_term_ignores_which_malignant_class_gets_the_mass() -> None:
    # All mass on basal cell carcinoma for a melanoma: wrong diagnosis, right side of the line.
    logits = torch.full((1, len(CLASSES)), -20.0)
    logits[0, CLASSES.index("bcc")] = 20.0
    label = torch.tensor([MEL])
    assert malignant_vs_benign_nll(logits, label).item() < 1e-6
    assert F.cross_entropy(logits, label).item() > 10


def test_without_a_binary_weight_the_loss_is_plain_cross_entropy() -> None:
    logits = torch.randn(5, len(CLASSES), generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 4, 5, 6])
    plain = F.cross_entropy(logits, labels, label_smoothing=0.1)
    assert training_loss(logits, labels, 0.1).item() == pytest.approx(plain.item())
    both = training_loss(logits, labels, 0.1, binary_weight=0.5)
    extra = 0.5 * malignant_vs_benign_nll(logits, labels)
    assert both.item() == pytest.approx((plain + extra).item(), 1e-6)
    assert math.isfinite(both.item())
