"""Scoring the validation part: logits in eval mode and the figures that pick the best epoch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from skinscan_engine.model import forward_with_features, malignant_mask
from skinscan_engine.preprocessing import Geometry

from .batches import model_inputs
from .devices import autocast
from .metrics import balanced_accuracy


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    geometry: Geometry,
    device: torch.device,
    bf16: bool,
    batch_size: int = 128,
    progress: str | None = None,
) -> torch.Tensor:
    """Logits for uint8 images, in eval mode; fp32 on the CPU."""
    model.eval()
    logits = []
    for x in model_inputs(images, geometry, device, batch_size, progress):
        with autocast(device, bf16):
            _, _, out = forward_with_features(model, x)
        logits.append(out.float().cpu())
    return torch.cat(logits)


def summarize(logits: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """Validation figures used to pick the best epoch."""
    probs = logits.softmax(1)
    p_mal = probs[:, malignant_mask()].sum(1).numpy()
    y_mal = malignant_mask().numpy()[labels]
    out = {
        "loss": float(F.cross_entropy(logits, torch.from_numpy(labels))),
        "balanced_accuracy_7": balanced_accuracy(labels, probs.argmax(1).numpy()),
    }
    if 0 < y_mal.sum() < len(y_mal):
        out["auc_malignant"] = float(roc_auc_score(y_mal, p_mal))
    return out
