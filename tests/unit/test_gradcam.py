"""Closed-form Grad-CAM equals pytorch-grad-cam's GradCAM on layer4 (fp32, real images), for one
class's logit and for the probability the verdict is made of."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from skinscan_engine.engine import Engine
from skinscan_engine.gradcam import class_targets, gradcam, minmax
from skinscan_engine.model import forward_with_features, head_linear, malignant_mask
from skinscan_engine.preprocessing import normalize, to_batch

TOL = 1e-4


def _reference(model: torch.nn.Module, x: torch.Tensor, targets: list[Any]) -> np.ndarray:
    """pytorch-grad-cam's maps; ``targets``: class indices or callables of one image's logits."""
    wanted = [ClassifierOutputTarget(t) if isinstance(t, int) else t for t in targets]
    with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        return cam(input_tensor=x.clone(), targets=wanted)


class GroupProbability:
    """The score ``sign * sum_{c in group} softmax(logits / T)_c`` of one image (autograd's)."""

    def __init__(self, group: torch.Tensor, temperature: float, sign: float) -> None:
        self.group, self.temperature, self.sign = group, temperature, sign

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits / self.temperature, dim=-1)
        return self.sign * probs[..., self.group].sum(dim=-1)


@pytest.fixture(scope="module")
def batch(engine_fp32: Engine, ham_images: list[bytes]) -> torch.Tensor:
    pixels = [engine_fp32.prepare(b).pixels for b in ham_images[:8]]
    return normalize(to_batch(pixels), engine_fp32.geometry)


def test_matches_pytorch_grad_cam_for_predicted_and_other_classes(
    engine_fp32: Engine, batch: torch.Tensor
) -> None:
    model = engine_fp32.network
    with torch.inference_mode():  # proves no backward pass is needed
        fmap, _, logits = forward_with_features(model, batch)
        predicted = logits.argmax(1)
        n_classes = logits.shape[1]
        size = tuple(batch.shape[-2:])
        ours_pred = gradcam(fmap, head_linear(model), class_targets(predicted, n_classes), size)
        other = (predicted + 3) % n_classes
        ours_other = gradcam(fmap, head_linear(model), class_targets(other, n_classes), size)
    assert batch.shape[0] >= 8
    ref_pred = _reference(model, batch, predicted.tolist())
    ref_other = _reference(model, batch, other.tolist())
    assert ours_pred.shape == ref_pred.shape == (batch.shape[0], 96, 128)
    assert np.abs(ours_pred.numpy() - ref_pred).max() <= TOL
    assert np.abs(ours_other.numpy() - ref_other).max() <= TOL
    # The maps are real maps, not all zeros: the comparison means something.
    assert (ref_pred.reshape(len(ref_pred), -1).max(1) > 0.99).all()


def test_engine_maps_explain_the_call_made(engine_fp32: Engine, ham_images: list[bytes]) -> None:
    """A map explains p_malignant for a malignant call and 1 - p_malignant for a benign one
    (not the top class: a malignant call whose most likely class is a nevus shows what made it
    malignant); a class asked for is explained as that class."""
    engine = engine_fp32
    images = ham_images[:16]
    # The random test model's p_malignant sit close together: a threshold at their median
    # gives both calls.
    p_mal = [p.result["p_malignant"] for p in engine.predict(images)]
    kept, threshold = engine.threshold, float(np.median(p_mal)) + 1e-7
    engine.threshold = threshold
    try:
        preds = engine.predict(images, classes=["mel"] * 2 + [None] * 14)
    finally:
        engine.threshold = kept
    x = normalize(to_batch([engine.prepare(b).pixels for b in images]), engine.geometry)
    group = malignant_mask(engine.classes)
    targets: list[Any] = [engine.classes.index("mel")] * 2
    for p in preds[2:]:
        # The call p_malignant makes, also behind an "unknown" (the gate's) answer.
        called = "malignant" if p.result["p_malignant"] >= threshold else "benign"
        assert p.explained_class == called
        sign = 1.0 if called == "malignant" else -1.0
        targets.append(GroupProbability(group, engine.temperature, sign))
    assert [p.explained_class for p in preds[:2]] == ["mel", "mel"]
    calls = {p.explained_class for p in preds[2:]}
    assert calls == {"malignant", "benign"}, calls
    ref = _reference(engine.network, x, targets)
    ours = np.stack([p.cam for p in preds])
    assert np.abs(ours - ref).max() <= TOL
    # Real maps, not all empty (on the random test model some scores have no positive evidence
    # anywhere, and their maps are empty in both), so the comparison means something.
    assert (ref.reshape(len(ref), -1).max(1) > 0.99).sum() >= len(ref) // 2


def test_minmax_matches_grad_cam_normalisation() -> None:
    flat = torch.zeros(1, 3, 4)
    assert torch.equal(minmax(flat), flat)  # 0 / (1e-7 + 0): an empty map stays empty
    ramp = torch.arange(12.0).view(1, 3, 4)
    out = minmax(ramp)
    assert float(out.min()) == 0.0 and abs(float(out.max()) - 1.0) < 1e-6
