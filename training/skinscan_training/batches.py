"""uint8 images in memory -> the model's input, batch by batch, on the device that runs it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from skinscan_engine.preprocessing import Geometry, standardize, to_batch

from .augment import AugmentConfig, augment


def model_inputs(
    images: np.ndarray,
    geometry: Geometry,
    device: torch.device,
    batch_size: int,
    progress: str | None = None,
    augment_cfg: AugmentConfig | None = None,
    seed: int = 0,
) -> Iterator[torch.Tensor]:
    """Standardised channels-last batches of uint8 N x H x W x 3 ``images``, in order.

    With ``augment_cfg`` each batch is augmented first, on ``device``, with draws seeded by
    ``seed``; ``progress`` names a progress bar (none when omitted).
    """
    gen = torch.Generator().manual_seed(seed)
    steps = range(0, len(images), batch_size)
    for start in tqdm(steps, desc=progress, disable=progress is None, unit="batch", leave=False):
        x = to_batch(images[start : start + batch_size]).to(device).float().div_(255.0)
        if augment_cfg is not None:
            x = augment(x, augment_cfg, gen)
        yield standardize(x, geometry)
