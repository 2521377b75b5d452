"""Shades-of-grey colour constancy: the estimate, the re-lighting, and a model that uses it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.model import build_model
from skinscan_engine.model_card import ModelCard, load_model, save_model
from skinscan_engine.preprocessing import (
    Geometry,
    estimate_illuminant,
    normalize,
    relight,
    to_batch,
)
from tests import image_samples as samples
from tests.engine_fixtures import ham_fixture_paths

LIGHT = (0.8, 0.6, 0.62)


def _ham_batch(n: int = 4) -> torch.Tensor:
    """n real dermoscopic images as a float Nx3xHxW batch in [0, 1]."""
    pixels = [
        np.asarray(Image.open(p).convert("RGB").resize((64, 48))) for p in ham_fixture_paths()[:n]
    ]
    return to_batch(pixels).float() / 255.0


def test_estimate_is_the_minkowski_6_norm_of_each_channel() -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = 0.5  # uniform red: its norm is 0.5 whatever the power
    x[0, 1, 0, 0] = 1.0  # one green pixel of four: (1/4) ** (1/6)
    light = estimate_illuminant(x)
    assert light.shape == (1, 3)
    assert light[0, 0].item() == pytest.approx(0.5)
    assert light[0, 1].item() == pytest.approx(0.25 ** (1 / 6))
    assert light[0, 2].item() == pytest.approx(0.05)  # black: floored, so the gain stays finite


def test_relit_images_carry_the_target_light() -> None:
    lit = relight(_ham_batch(), LIGHT)
    # Clipping at 1.0 takes a little off the brightest pixels, so not exact.
    assert torch.allclose(estimate_illuminant(lit), torch.tensor(LIGHT).expand(4, 3), atol=0.01)
    assert lit.min() >= 0.0 and lit.max() <= 1.0


def test_a_colour_cast_is_undone() -> None:
    """The same lesion under a bluish and a reddish light comes out (nearly) the same."""
    x = _ham_batch()
    bluish = x * torch.tensor([0.8, 0.95, 1.0]).view(1, 3, 1, 1)
    reddish = x * torch.tensor([1.0, 0.85, 0.8]).view(1, 3, 1, 1)
    a, b = relight(bluish, LIGHT), relight(reddish, LIGHT)
    assert (a - b).abs().mean() < 0.01
    assert (bluish - reddish).abs().mean() > 0.05  # the casts themselves differ a lot


def test_geometry_without_light_leaves_colours_alone() -> None:
    pixels = to_batch([np.full((48, 64, 3), (200, 120, 130), dtype=np.uint8)])
    plain = normalize(pixels, Geometry(64, 48, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    assert torch.allclose(plain[0, :, 0, 0], torch.tensor([200, 120, 130]) / 255.0)
    lit = normalize(pixels, Geometry(64, 48, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), LIGHT))
    assert torch.allclose(lit[0, :, 0, 0], torch.tensor(LIGHT))  # a flat image is its own light


@pytest.fixture(scope="module")
def relit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("relit-model")
    save_model(
        build_model().eval(), ModelCard(version="test-relit", illuminant=list(LIGHT)), folder / "m"
    )
    return folder


def test_the_card_carries_the_light(relit_model: Path) -> None:
    loaded = load_model(relit_model)
    assert loaded.card.illuminant == list(LIGHT)
    assert loaded.card.geometry.illuminant == LIGHT
    # Cards written before colour constancy read as "images as they are".
    assert ModelCard(version="old").geometry.illuminant is None


def test_engine_answers_the_same_under_another_light(relit_model: Path) -> None:
    """What the product gains: a dermatoscope's light colour does not change the answer."""
    engine = Engine.from_path(relit_model, EngineConfig(device="cpu", precision="fp32"))
    original = Image.open(ham_fixture_paths()[0]).convert("RGB")
    arr = np.asarray(original, dtype=np.float32)
    cast = Image.fromarray(np.clip(arr * (0.85, 0.95, 1.0), 0, 255).astype(np.uint8))
    jpegs = [samples.encode(im, "JPEG", quality=95) for im in (original, cast)]
    a, b = engine.predict(jpegs)
    pa, pb = a.result["probabilities"], b.result["probabilities"]
    assert max(abs(pa[c] - pb[c]) for c in pa) < 0.02

    # The same network without the light in its card is not invariant: the test can fail.
    plain = Engine.from_path(relit_model, EngineConfig(device="cpu", precision="fp32"))
    plain.geometry = replace(plain.geometry, illuminant=None)
    x = to_batch([engine.prepare(data).pixels for data in jpegs])
    with torch.inference_mode():
        lit_logits = engine.forward(x)[2]
        plain_logits = plain.forward(x)[2]
    assert (lit_logits[0] - lit_logits[1]).abs().max() < (
        plain_logits[0] - plain_logits[1]
    ).abs().max()
