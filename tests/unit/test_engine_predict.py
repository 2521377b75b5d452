"""The engine's answers: result shape, calibration, threshold, "unknown" gate, Grad-CAM class."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from skinscan_engine.engine import RESULT_KEYS, Engine, EngineConfig
from skinscan_engine.model import MALIGNANT
from skinscan_engine.verdict import VERDICTS, verdict_codes
from tests.engine_fixtures import shared_ham_paths, shipped_model_path


@pytest.fixture(scope="module")
def answers(engine: Engine, ham_images: list[bytes]) -> list:
    return engine.predict(ham_images[:8])


def test_result_dict(answers: list, engine: Engine) -> None:
    for pred in answers:
        r = pred.result
        assert tuple(r) == RESULT_KEYS
        assert r["verdict"] in ("benign", "malignant", "unknown")
        assert set(r["probabilities"]) == set(engine.classes)
        assert math.isclose(sum(r["probabilities"].values()), 1.0, abs_tol=1e-4)
        p_mal = sum(p for c, p in r["probabilities"].items() if c in MALIGNANT)
        assert math.isclose(r["p_malignant"], p_mal, abs_tol=1e-4)
        assert r["top_class"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["model_version"] == "test-random"
        assert r["reason"]
        assert 0.0 <= r["confidence"] <= 1.0
        assert "heatmap_png" not in r  # heatmaps travel beside the JSON, not in it


def test_heatmap_pngs(answers: list, engine: Engine) -> None:
    pred = answers[0]
    raw = Image.open(io.BytesIO(pred.heatmap_png()))
    over = Image.open(io.BytesIO(pred.overlay_png()))
    width = engine.config.overlay_width
    assert raw.mode == "L" and over.mode == "RGB"
    assert raw.size == over.size == (width, width * 96 // 128)
    assert np.asarray(raw).max() >= 250  # normalised map: its peak is white
    assert pred.cam.shape == (96, 128) and pred.cam.dtype == np.float32
    d = pred.as_dict(heatmaps=True)
    assert d["heatmap_png"].startswith(b"\x89PNG") and d["overlay_png"].startswith(b"\x89PNG")


def test_threshold_and_confidence(random_model_dir, ham_images: list[bytes]) -> None:
    eng = Engine.from_path(random_model_dir, EngineConfig(device="cpu", precision="fp32"))
    eng.ood_threshold = None  # gate off: benign/malignant only
    eng.threshold = 0.0
    [pred] = eng.predict(ham_images[:1])
    assert pred.result["verdict"] == "malignant"
    assert pred.result["confidence"] == pred.result["p_malignant"]
    eng.threshold = 1.01
    [pred] = eng.predict(ham_images[:1])
    assert pred.result["verdict"] == "benign"
    assert math.isclose(pred.result["confidence"], 1 - pred.result["p_malignant"], abs_tol=1e-6)
    assert "< threshold" in pred.result["reason"]


def test_temperature_softens(random_model_dir, ham_images: list[bytes]) -> None:
    eng = Engine.from_path(random_model_dir, EngineConfig(device="cpu", precision="fp32"))
    [sharp] = eng.predict(ham_images[:1])
    eng.temperature = 100.0
    [soft] = eng.predict(ham_images[:1])
    assert max(soft.result["probabilities"].values()) <= max(sharp.result["probabilities"].values())
    assert max(soft.result["probabilities"].values()) < 0.2  # near uniform over 7 classes


def test_gate_rejects_above_threshold(
    engine: Engine,
    answers: list,
    ham_images: list[bytes],
) -> None:
    scores = sorted(p.result["ood_score"] for p in answers)
    threshold = (scores[3] + scores[4]) / 2
    saved = engine.ood_threshold
    try:
        engine.ood_threshold = threshold
        results = [p.result for p in engine.predict(ham_images[:8])]
    finally:
        engine.ood_threshold = saved
    for r in results:
        if r["ood_score"] > threshold:
            assert r["verdict"] == "unknown"
            assert "not recognised as a skin-lesion photo" in r["reason"]
            assert "threshold" in r["reason"]
        else:
            assert r["verdict"] in ("benign", "malignant")
    assert any(r["verdict"] == "unknown" for r in results)
    assert any(r["verdict"] != "unknown" for r in results)


def test_answers_follow_the_shared_rule(
    engine: Engine, answers: list, ham_images: list[bytes]
) -> None:
    """The verdicts served are the ones the evaluation counts (skinscan_engine.verdict)."""
    p_mal = [p.result["p_malignant"] for p in answers]
    ood = [p.result["ood_score"] for p in answers]
    saved = engine.threshold, engine.ood_threshold
    try:  # thresholds inside the answers' range, so that all three verdicts can occur
        engine.threshold, engine.ood_threshold = float(np.median(p_mal)), float(np.median(ood))
        results = [p.result for p in engine.predict(ham_images[: len(answers)])]
        codes = verdict_codes(p_mal, ood, engine.threshold, engine.ood_threshold)
    finally:
        engine.threshold, engine.ood_threshold = saved
    assert [r["verdict"] for r in results] == [VERDICTS[c] for c in codes]
    assert len({r["verdict"] for r in results}) >= 2


def test_gate_methods_without_tensors(random_model_dir, ham_images: list[bytes]) -> None:
    eng = Engine.from_path(random_model_dir, EngineConfig(device="cpu", precision="fp32"))
    eng.ood_method, eng.ood_threshold = "energy", -1e9
    [pred] = eng.predict(ham_images[:1])
    assert pred.result["verdict"] == "unknown" and "energy" in pred.result["reason"]
    eng.ood_method, eng.ood_threshold = "none", None
    [pred] = eng.predict(ham_images[:1])
    assert pred.result["verdict"] != "unknown" and pred.result["ood_score"] == 0.0


def test_grad_cam_class_on_request(engine: Engine, ham_images: list[bytes]) -> None:
    preds = engine.predict(ham_images[:2], classes=["bcc", 4])
    assert [p.explained_class for p in preds] == ["bcc", "mel"]
    with pytest.raises(ValueError):
        engine.predict(ham_images[:1], classes=["cat"])


def test_chunks_give_the_same_answers(random_model_dir, ham_images: list[bytes]) -> None:
    cfg = EngineConfig(device="cpu", precision="fp32")
    whole = Engine.from_path(random_model_dir, cfg).predict(ham_images[:6])
    chunked = Engine.from_path(random_model_dir, replace(cfg, max_batch_size=4))
    parts = chunked.predict(ham_images[:6])
    for a, b in zip(whole, parts, strict=True):
        assert a.result["verdict"] == b.result["verdict"]
        assert abs(a.result["p_malignant"] - b.result["p_malignant"]) < 1e-5
        assert np.abs(a.cam - b.cam).max() < 1e-4


def test_inputs_bytes_array_and_pil_agree(engine: Engine, ham_images: list[bytes]) -> None:
    img = Image.open(io.BytesIO(ham_images[0])).convert("RGB")
    a, b, c = engine.predict([ham_images[0], np.asarray(img), img])
    assert a.result == b.result == c.result


def test_bf16_agrees_with_fp32(random_model_dir) -> None:
    """bf16 verdicts agree with fp32 on >= 99.5% of real images, p_malignant within 0.02.

    Meaningful only with trained weights: it uses the shipped model when ``models/`` has one
    (and then 200 images of the shared HAM10000 copy when present: one flip at most, since
    bf16 rounding moves p_malignant by ~0.005 and an image can sit on the threshold), else the
    random model on the 16 fixture images with the gate off. The full check on 1,000 images is
    ``bench/bf16_check.py``.
    """
    path = shipped_model_path() or random_model_dir
    eng = Engine.from_path(path, EngineConfig(device="cpu", precision="bf16"))
    if path == random_model_dir:
        # A random network's features barely differ between images, so its gate's distances
        # are dominated by rounding: compare benign/malignant verdicts and p_malignant only.
        eng.ood_threshold = None
    paths = shared_ham_paths(200) if shipped_model_path() else []
    from tests.engine_fixtures import ham_fixture_paths

    paths = paths or ham_fixture_paths()
    check = eng.check_bf16([p.read_bytes() for p in paths])
    assert check.n == len(paths)
    assert check.verdict_agreement >= 0.995, check
    assert check.max_abs_dp <= 0.02, check
    assert check.ok


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKINSCAN_PRECISION", "fp32")
    monkeypatch.setenv("SKINSCAN_COMPILE", "1")
    monkeypatch.setenv("SKINSCAN_OVERLAY_WIDTH", "256")
    cfg = EngineConfig.from_env(device="cpu")
    assert (cfg.precision, cfg.compile, cfg.overlay_width, cfg.device) == ("fp32", True, 256, "cpu")
    assert cfg.fold_batchnorm
    monkeypatch.setenv("SKINSCAN_FOLD_BN", "0")
    assert not EngineConfig.from_env().fold_batchnorm


def test_no_autograd_graph(engine: Engine, ham_images: list[bytes]) -> None:
    # Grad-CAM needs no gradients: the whole predict runs in inference mode.
    before = torch.is_grad_enabled()
    [pred] = engine.predict(ham_images[:1])
    assert torch.is_grad_enabled() == before
    assert pred.cam.max() > 0.99
