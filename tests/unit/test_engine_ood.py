"""The "unknown" gate on non-skin images (the rates need the trained model: bench/ood_check.py)."""

from __future__ import annotations

import importlib.util

import pytest

from skinscan_engine.engine import Engine
from tests.engine_fixtures import REPO


def _ood_check():
    spec = importlib.util.spec_from_file_location("ood_check", REPO / "bench" / "ood_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def non_skin() -> dict[str, bytes]:
    return _ood_check().non_skin_images()


def test_non_skin_set_is_local_and_readable(non_skin: dict[str, bytes], engine: Engine) -> None:
    assert sum(k.startswith("skimage/") for k in non_skin) >= 20  # bundled in the wheel
    assert {
        "synthetic/uniform-noise",
        "synthetic/flat-white",
        "synthetic/text",
        "synthetic/screenshot",
    } <= set(non_skin)
    for name, data in non_skin.items():
        engine.prepare(data)  # every one decodes (grey, palette, GIF, RGBA included)
        assert data, name


def test_gate_rejects_every_image_scored_above_threshold(
    non_skin: dict[str, bytes], engine: Engine
) -> None:
    names = sorted(non_skin)[::3]  # a third of them keeps this test small
    preds = engine.predict([non_skin[n] for n in names])
    scores = [p.result["ood_score"] for p in preds]
    saved = engine.ood_threshold
    try:
        engine.ood_threshold = min(scores) - 1e-6
        again = engine.predict([non_skin[n] for n in names])
    finally:
        engine.ood_threshold = saved
    assert all(p.result["verdict"] == "unknown" for p in again)
    assert all(
        p.result["reason"].startswith("not recognised as a skin-lesion photo") for p in again
    )


def test_gate_reuses_projected_means_until_its_tensors_change() -> None:
    import torch

    from skinscan_engine.ood import MahalanobisGate

    torch.manual_seed(0)
    gate = MahalanobisGate.fit(torch.randn(40, 8), torch.arange(40) % 3, 3)
    feats = torch.randn(5, 8)

    def reference(g: MahalanobisGate) -> torch.Tensor:
        f = feats / feats.norm(dim=1, keepdim=True)
        d2 = torch.cdist(f @ g.whitener, g.means @ g.whitener).square()
        return d2.min(dim=1).values / f.shape[1]

    with torch.inference_mode():  # first use under inference mode, as in the engine
        first = gate.score(feats)
    assert gate.projected_means() is gate.projected_means()  # computed once
    assert not gate.projected_means().is_inference()
    torch.testing.assert_close(first, reference(gate), rtol=0, atol=0)
    torch.testing.assert_close(gate.score(feats), first, rtol=0, atol=0)  # outside it too
    gate.whitener = gate.whitener * 2  # replaced (as when moved to a device): recomputed
    torch.testing.assert_close(gate.score(feats), reference(gate), rtol=0, atol=0)
    torch.testing.assert_close(gate.score(feats), first * 4, rtol=1e-5, atol=0)
