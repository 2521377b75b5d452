"""Validation scores as the shipped model is served: what the card's threshold is chosen on.

The served engine differs a little from the training loop's network (fp16 weights, BatchNorm
folded into the convolutions, the card's rounded temperature, bf16 where the hardware does it
natively), and at the threshold one image's score moving past it changes the sensitivity. So
the threshold is chosen on the engine's own scores, at every precision it may serve in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from skinscan_engine.engine import Engine, EngineConfig, use_bf16
from skinscan_engine.preprocessing import to_batch

BATCH = 64


def serving_precisions(device: torch.device) -> tuple[str, ...]:
    """fp32 everywhere, and bf16 where this device runs it natively (a GPU endpoint does). On
    a machine without native bf16 its emulation would take an hour; then fp32 only."""
    return ("fp32", "bf16") if use_bf16("auto", device) else ("fp32",)


def served_p_malignant(
    stem: Path, images: np.ndarray, device: torch.device
) -> dict[str, np.ndarray]:
    """``p_malignant`` of ``images`` (N x H x W x 3 uint8 at the model's input size) by the
    engine serving the model at ``stem``, per precision of :func:`serving_precisions`."""
    engine = Engine.from_path(stem, EngineConfig(device=str(device), precision="fp32"))
    scores = {}
    for precision in serving_precisions(device):
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH):
                batch = to_batch(list(images[start : start + BATCH]))
                _, _, logits = engine.forward(batch, bf16=precision == "bf16")
                probs = F.softmax(logits / engine.temperature, dim=1)
                parts.append(probs[:, engine.malignant].sum(dim=1).float().cpu().numpy())
        scores[precision] = np.concatenate(parts).astype(np.float64)
    return scores
