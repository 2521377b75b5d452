"""Mixup: train on blends of two images, with their targets blended in the same proportion.

Augmentation moves one image within what a lesion may look like; mixup also teaches the
network to answer in between two lesions, which smooths its scores between classes rather
than pushing each training image to a confident corner (Zhang et al., 2018, "mixup: Beyond
Empirical Risk Minimization"). One blend weight per batch, drawn from Beta(alpha, alpha):
small ``alpha`` keeps most blends close to one of the two images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def check_alpha(alpha: float) -> float:
    """``alpha`` if it is a usable ``--mixup`` setting (0 = off), else a ValueError saying why."""
    if alpha < 0:
        raise ValueError(f"mixup alpha must be at least 0 (0 = off), got {alpha}")
    return alpha


def as_probabilities(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class probabilities: class indices become one-hot rows; probabilities stay."""
    if targets.is_floating_point():
        return targets.float()
    return F.one_hot(targets.long(), num_classes).float()


def mix_batch(
    x: torch.Tensor, targets: torch.Tensor, alpha: float, num_classes: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each image of ``x`` with another of the batch, and its targets alike.

    Draws (the blend weight and the partners) come from ``gen`` on the CPU, so a seeded run
    blends the same pairs on any device. Returns the images and per-class target probabilities.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be above 0, got {alpha}")
    # torch's Beta sampler takes no generator; a seed drawn from ``gen`` keeps runs repeatable.
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    partners = torch.randperm(x.shape[0], generator=gen).to(x.device, non_blocking=True)
    probs = as_probabilities(targets, num_classes)
    mixed_x = x.mul(lam).add_(x[partners], alpha=1 - lam)
    mixed_y = probs.mul(lam).add_(probs[partners], alpha=1 - lam)
    return mixed_x, mixed_y
