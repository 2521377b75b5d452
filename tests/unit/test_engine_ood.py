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


def _features(n: int, seed: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "layer4_mean": torch.randn(n, 8, generator=g),
        "layer3_mean_std": torch.randn(n, 6, generator=g),
    }


def test_layered_gate_sums_each_space_on_its_validation_scale() -> None:
    import torch

    from skinscan_engine.ood import LayeredGate

    train, val, new = _features(60, 0), _features(30, 1), _features(5, 2)
    labels = torch.arange(60) % 3
    gate = LayeredGate.fit(train, labels, 3, val)
    expected = torch.zeros(5)
    for name, part in gate.parts.items():
        d = part.score(val[name]).double()
        q1, mid, q3 = torch.quantile(d, torch.tensor([0.25, 0.5, 0.75], dtype=d.dtype)).tolist()
        assert gate.centres[name] == pytest.approx(mid) and gate.scales[name] == pytest.approx(
            q3 - q1
        )
        expected += (part.score(new[name]) - mid) / (q3 - q1)
    torch.testing.assert_close(gate.score(new), expected)
    # On its own validation scale each space has median 0: the sum is centred too.
    assert abs(float(gate.score(val).median())) < 1.0
    gate.calibrate(gate.score(val), max_reject=0.1)
    assert int((gate.score(val) > gate.threshold).sum()) <= 3  # 10% of 30


def test_gate_round_trips_through_the_model_files_in_both_card_formats(tmp_path) -> None:
    import json

    import torch

    from skinscan_engine.model import build_model
    from skinscan_engine.model_card import ModelCard, load_model, save_model
    from skinscan_engine.ood import LayeredGate, MahalanobisGate

    train, val = _features(60, 0), _features(30, 1)
    gate = LayeredGate.fit(train, torch.arange(60) % 3, 3, val)
    gate.calibrate(gate.score(val), 0.05)
    network = build_model().eval()
    save_model(network, ModelCard(version="t"), tmp_path / "m", gate)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["ood"]["method"] == "mahalanobis_layers"
    assert [p["features"] for p in card["ood"]["parts"]] == ["layer4_mean", "layer3_mean_std"]
    loaded = load_model(tmp_path / "m").gate
    assert loaded is not None and loaded.threshold == gate.threshold
    # fp16 on disk: scores agree to a few parts in a thousand.
    torch.testing.assert_close(loaded.score(val), gate.score(val), rtol=2e-2, atol=2e-2)

    # Version 1.0.0's card: one layer4 gate under "ood.", method "mahalanobis".
    old = MahalanobisGate.fit(train["layer4_mean"], torch.arange(60) % 3, 3)
    old.calibrate(old.score(val["layer4_mean"]), 0.05)
    save_model(network, ModelCard(version="old"), tmp_path / "old", LayeredGate.single(old))
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "old.safetensors"))
    tensors = {k.replace("ood.layer4_mean.", "ood."): v for k, v in tensors.items()}
    save_file(tensors, str(tmp_path / "old.safetensors"))
    card = json.loads((tmp_path / "old.json").read_text())
    card["ood"] = {"method": "mahalanobis", "threshold": old.threshold}
    (tmp_path / "old.json").write_text(json.dumps(card))
    legacy = load_model(tmp_path / "old").gate
    assert legacy is not None and list(legacy.parts) == ["layer4_mean"]
    torch.testing.assert_close(
        legacy.score(val), old.score(val["layer4_mean"]), rtol=2e-2, atol=2e-2
    )


@pytest.mark.parametrize("channels_last", [True, False])
def test_gate_features_are_the_torch_mean_and_unbiased_std(channels_last: bool) -> None:
    import torch

    from skinscan_engine.ood import gate_features

    g = torch.Generator().manual_seed(0)
    # Activations after a ReLU, off-centre, in bf16 as the trunk gives them.
    layer3 = (torch.randn(4, 64, 6, 8, generator=g) * 3 + 5).relu().bfloat16()
    layer4 = torch.randn(4, 128, 3, 4, generator=g).relu().bfloat16()
    if channels_last:
        layer3 = layer3.contiguous(memory_format=torch.channels_last)
        layer4 = layer4.contiguous(memory_format=torch.channels_last)
    feats = gate_features(layer3, layer4)
    l3 = layer3.float()
    expected = torch.cat([l3.mean(dim=(2, 3)), l3.std(dim=(2, 3))], dim=1)
    torch.testing.assert_close(feats["layer3_mean_std"], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(feats["layer4_mean"], layer4.float().mean(dim=(2, 3)))
    assert feats["layer3_mean_std"].shape == (4, 128)
