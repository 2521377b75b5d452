"""BatchNorm folded into the convolutions: same network outputs, same engine answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.model import build_model, fold_batchnorm, trunk_features
from skinscan_engine.preprocessing import Geometry, fit_to_geometry, normalize, to_batch
from tests.engine_fixtures import ham_fixture_paths, shipped_model_path


def _network_with_statistics(seed: int = 0) -> nn.Module:
    """A ResNet-50 whose BatchNorms are far from the identity they start as.

    A fresh network's BatchNorms (mean 0, variance 1, scale 1, shift 0, and zero scale on
    each block's last one) would fold into nothing, and a wrong fold could pass unseen.
    """
    torch.manual_seed(seed)
    model = build_model()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.empty(n).uniform_(0.5, 1.5)
            m.bias.data = torch.randn(n) * 0.1
            m.running_mean = torch.randn(n) * 0.1
            m.running_var = torch.empty(n).uniform_(0.5, 2.0)
    return model.eval()


def _images() -> torch.Tensor:
    """Four real dermoscopic images, normalised as the engine feeds them."""
    geometry = Geometry()
    pixels = [fit_to_geometry(Image.open(p).convert("RGB"), geometry) for p in ham_fixture_paths()]
    return normalize(to_batch(pixels[:4]), geometry)


def test_folded_network_has_no_batchnorm_and_the_same_outputs() -> None:
    reference = _network_with_statistics()
    folded = fold_batchnorm(_network_with_statistics())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.Identity) for m in folded.modules()) == 53

    x = _images()
    with torch.inference_mode():
        ref_mid, ref_map = trunk_features(reference, x)
        mid, fmap = trunk_features(folded, x)
        ref_logits, logits = reference(x), folded(x)
    for ref, got in ((ref_mid, mid), (ref_map, fmap), (ref_logits, logits)):
        scale = float(ref.abs().max())
        assert scale > 0
        assert float((ref - got).abs().max()) <= 1e-4 * scale
    # The statistics matter: the same convolutions with BatchNorm reset answer differently,
    # so agreement above is not the agreement of two networks that ignore them.
    reset = _network_with_statistics()
    for m in reset.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
    with torch.inference_mode():
        assert float((reset(x) - ref_logits).abs().max()) > 1e-2 * float(ref_logits.abs().max())


def test_fold_refuses_a_network_in_training_mode() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(build_model().train())


def _answers(engine: Engine, images: list[bytes]) -> tuple[list, np.ndarray]:
    predictions = engine.predict(images)
    return [p.result for p in predictions], np.stack([p.cam for p in predictions])


def test_engine_answers_the_same_with_and_without_folding(
    random_model_dir, ham_images: list[bytes]
) -> None:
    """On the shipped model (trained statistics) when there is one, else the random model."""
    path = shipped_model_path() or random_model_dir
    folded = Engine.from_path(path, EngineConfig(device="cpu", precision="fp32"))
    plain = Engine.from_path(
        path, EngineConfig(device="cpu", precision="fp32", fold_batchnorm=False)
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.network.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.network.modules())

    got, got_cams = _answers(folded, ham_images)
    want, want_cams = _answers(plain, ham_images)
    for g, w in zip(got, want, strict=True):
        assert g["verdict"] == w["verdict"]
        assert g["top_class"] == w["top_class"]
        assert g["p_malignant"] == pytest.approx(w["p_malignant"], abs=1e-5)
        assert g["ood_score"] == pytest.approx(w["ood_score"], rel=1e-4, abs=1e-4)
    assert float(np.abs(got_cams - want_cams).max()) <= 1e-4
