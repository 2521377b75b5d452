"""Size a training run to a time budget (a GPU lease is counted in minutes)."""

from __future__ import annotations

import math

#: Share of a pure training step's throughput that a real epoch reaches: gathering and
#: augmenting batches, validation and the checkpoint write take the rest (kept generous).
EPOCH_EFFICIENCY = 0.75


def epochs_within(
    seconds: float,
    images_per_second: float,
    samples_per_epoch: int,
    validation_images: int,
    max_epochs: int,
) -> int:
    """The most epochs (at least 1, at most ``max_epochs``) that fit ``seconds`` of training.

    ``images_per_second`` is the measured rate of bare training steps; one validation image
    costs about a third of a training image (forward pass only).
    """
    if seconds <= 0 or images_per_second <= 0 or samples_per_epoch <= 0:
        raise ValueError("seconds, images_per_second and samples_per_epoch must be positive")
    per_epoch = (samples_per_epoch + validation_images / 3) / (images_per_second * EPOCH_EFFICIENCY)
    return max(1, min(max_epochs, math.floor(seconds / per_epoch)))
