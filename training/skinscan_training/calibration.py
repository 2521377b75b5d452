"""Temperature scaling, expected calibration error and the decision threshold."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import numpy as np
import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iters: int = 200) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) on held-out data."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=iters, line_search_fn="strong_wolfe")
    # clone(): logits may come from inference_mode, which autograd refuses to record.
    logits, labels = logits.detach().float().clone(), labels.long().clone()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """ECE with equal-width bins: sum over bins of |accuracy - confidence| weighted by count."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def top_label_ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label confidence of a multi-class prediction."""
    return expected_calibration_error(probs.max(1), probs.argmax(1) == labels, bins)


def binary_ece(p_positive: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of a binary probability (here p_malignant), read as a calibrated risk."""
    p = np.asarray(p_positive, float)
    confidence = np.where(p >= 0.5, p, 1 - p)
    correct = (p >= 0.5) == np.asarray(y, bool)
    return expected_calibration_error(confidence, correct, bins)


def threshold_for_sensitivity(p_malignant: np.ndarray, y: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity (p >= threshold counts as malignant) is >= target.

    The highest such threshold keeps specificity as high as the sensitivity aim allows.
    """
    y = np.asarray(y, bool)
    scores = np.sort(np.asarray(p_malignant, float)[y])[::-1]
    if len(scores) == 0:
        raise ValueError("no malignant example to set a sensitivity threshold on")
    # Need at least ceil(target * n) positives at or above the threshold.
    k = int(np.ceil(target * len(scores)))
    return float(scores[max(k, 1) - 1])


def stored_threshold(threshold: float, decimals: int = 4) -> float:
    """``threshold`` rounded down to ``decimals`` places, as the model card stores it.

    Down, never to the nearest: a threshold rounded up can pass the score of the last
    malignant image it had to keep, and the shipped model then misses the sensitivity aim.
    In Decimal, not floats (``t * 10**d`` can round up to the next integer): the decimal
    ``repr`` reads back as ``threshold`` itself, and flooring it cannot go above that.
    """
    step = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(threshold))).quantize(step, rounding=ROUND_FLOOR))
