"""The training loss: cross-entropy over the seven diagnoses, optionally with a binary term.

The product answers one question, malignant or benign, with ``p_malignant`` = the summed
probability of the malignant diagnoses, and its threshold is set where sensitivity reaches
0.90. Seven-class cross-entropy charges a naevus scored as a benign keratosis as much as a
naevus scored as a melanoma; the binary term charges only mass on the wrong side of the
malignant/benign line, which is the confusion that decides specificity at that threshold.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from skinscan_engine.model import malignant_mask


@lru_cache(maxsize=4)
def _malignant_mask_on(device: torch.device) -> torch.Tensor:
    # Built once per device: the loss runs every step, and on a GPU a fresh mask is a copy.
    return malignant_mask().to(device)


def malignant_vs_benign_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the malignant/benign answer implied by ``logits``.

    ``targets`` are class indices, or per-class probabilities (distillation), whose malignant
    share is the binary target.
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    mask = _malignant_mask_on(logits.device)
    log_malignant = torch.logsumexp(log_p[:, mask], dim=1)
    log_benign = torch.logsumexp(log_p[:, ~mask], dim=1)
    if targets.is_floating_point():
        share = targets.float()[:, mask].sum(dim=1)
    else:
        share = mask[targets].float()
    return -(share * log_malignant + (1 - share) * log_benign).mean()


def training_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float,
    binary_weight: float = 0.0,
) -> torch.Tensor:
    """Seven-class cross-entropy plus ``binary_weight`` times the malignant-vs-benign term."""
    loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if binary_weight:
        loss = loss + binary_weight * malignant_vs_benign_nll(logits, targets)
    return loss
