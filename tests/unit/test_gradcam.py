"""Closed-form Grad-CAM equals pytorch-grad-cam's GradCAM on layer4 (fp32, real images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from skinscan_engine.engine import Engine
from skinscan_engine.gradcam import gradcam, minmax
from skinscan_engine.model import forward_with_features, head_linear
from skinscan_engine.preprocessing import normalize, to_batch

TOL = 1e-4


def _reference(model: torch.nn.Module, x: torch.Tensor, classes: list[int]) -> np.ndarray:
    with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        return cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(c) for c in classes])


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
        ours_pred = gradcam(fmap, head_linear(model), predicted, tuple(batch.shape[-2:]))
        other = (predicted + 3) % logits.shape[1]
        ours_other = gradcam(fmap, head_linear(model), other, tuple(batch.shape[-2:]))
    assert batch.shape[0] >= 8
    ref_pred = _reference(model, batch, predicted.tolist())
    ref_other = _reference(model, batch, other.tolist())
    assert ours_pred.shape == ref_pred.shape == (batch.shape[0], 96, 128)
    assert np.abs(ours_pred.numpy() - ref_pred).max() <= TOL
    assert np.abs(ours_other.numpy() - ref_other).max() <= TOL
    # The maps are real maps, not all zeros: the comparison means something.
    assert (ref_pred.reshape(len(ref_pred), -1).max(1) > 0.99).all()


def test_engine_maps_match_reference(engine_fp32: Engine, ham_images: list[bytes]) -> None:
    images = ham_images[:8]
    preds = engine_fp32.predict(images, classes=["mel"] * 4 + [None] * 4)
    x = normalize(to_batch([engine_fp32.prepare(b).pixels for b in images]), engine_fp32.geometry)
    targets = [engine_fp32.classes.index(p.explained_class) for p in preds]
    assert targets[:4] == [engine_fp32.classes.index("mel")] * 4
    ref = _reference(engine_fp32.network, x, targets)
    ours = np.stack([p.cam for p in preds])
    assert np.abs(ours - ref).max() <= TOL


def test_minmax_matches_grad_cam_normalisation() -> None:
    flat = torch.zeros(1, 3, 4)
    assert torch.equal(minmax(flat), flat)  # 0 / (1e-7 + 0): an empty map stays empty
    ramp = torch.arange(12.0).view(1, 3, 4)
    out = minmax(ramp)
    assert float(out.min()) == 0.0 and abs(float(out.max()) - 1.0) < 1e-6
