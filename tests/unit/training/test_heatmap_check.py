"""Where the heatmap points: the rough lesion outline, the figures and the shared pattern."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinscan_training.heatmap_check import (
    ImageCheck,
    check_image,
    lesion_outline,
    on_lesion,
    otsu_threshold,
    shared_pattern,
    summarize,
    tilt,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ham"
H, W = 96, 128


def _ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _dermoscopy_like(lesion: np.ndarray, vignette: bool = True) -> np.ndarray:
    """Pink skin with noise, a brown lesion, and the dark corners of a dermatoscope."""
    rng = np.random.default_rng(0)
    img = np.empty((H, W, 3), np.float32)
    img[:] = (205, 150, 135)
    img[lesion] = (95, 60, 45)
    if vignette:
        img[~_ellipse(H / 2, W / 2, H * 0.72, W * 0.72)] = (20, 15, 15)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_otsu_splits_two_groups_between_them() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(60, 5, 500), rng.normal(180, 5, 1500)])
    assert 80 < otsu_threshold(values) < 160


def test_the_outline_finds_an_off_centre_lesion_and_leaves_out_the_dark_corners() -> None:
    lesion = _ellipse(40, 70, 18, 24)
    mask = lesion_outline(_dermoscopy_like(lesion))
    assert mask is not None
    iou = (mask & lesion).sum() / (mask | lesion).sum()
    assert iou > 0.85
    assert not mask[0, 0] and not mask[-1, -1]


def test_no_outline_for_a_flat_image_or_a_speck() -> None:
    assert lesion_outline(np.full((H, W, 3), 180, np.uint8)) is None
    speck = _dermoscopy_like(_ellipse(48, 64, 2, 2), vignette=False)
    assert lesion_outline(speck) is None  # under 2% of the frame: not trusted


def test_real_dermoscopy_images_get_an_outline_near_the_middle() -> None:
    paths = sorted(FIXTURES.glob("*.jpg"))
    assert len(paths) >= 10
    outlined = 0
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB").resize((W, H), Image.BILINEAR))
        mask = lesion_outline(rgb)
        if mask is None:
            continue
        outlined += 1
        cy, cx = np.argwhere(mask).mean(axis=0)
        assert abs(cy / H - 0.5) < 0.3 and abs(cx / W - 0.5) < 0.3, path.name
    assert outlined >= 0.7 * len(paths)


def test_on_lesion_measures_the_share_of_weight_and_the_peak() -> None:
    mask = _ellipse(48, 64, 20, 30)
    assert on_lesion(mask.astype(float), mask) == (pytest.approx(1.0), True)
    outside = np.zeros((H, W))
    outside[0:10, 0:10] = 1.0
    assert on_lesion(outside, mask) == (0.0, False)
    assert on_lesion(np.zeros((H, W)), mask)[0] == 0.0
    half = mask * 1.0 + (~mask) * (mask.sum() / (~mask).sum())  # equal weight in and out
    assert on_lesion(half, mask)[0] == pytest.approx(0.5)


def test_the_shared_pattern_tells_one_fixed_map_from_maps_of_their_own() -> None:
    rng = np.random.default_rng(2)
    fixed = rng.random((H, W))
    same = np.stack([fixed + rng.normal(0, 0.01, (H, W)) for _ in range(20)])
    assert shared_pattern(same)[1] > 0.99
    own = rng.random((20, H, W))
    mean_map, correlation = shared_pattern(own)
    assert abs(correlation) < 0.1
    assert mean_map.shape == (H, W)
    with pytest.raises(ValueError):
        shared_pattern(own[:1])


def test_tilt_says_which_half_is_hotter() -> None:
    ramp = np.tile(np.linspace(0, 1, W), (H, 1))  # hotter to the right
    left_right, top_bottom = tilt(ramp)
    assert left_right == pytest.approx(-0.5, abs=0.02)
    assert top_bottom == pytest.approx(0.0)


def test_check_image_compares_the_map_with_the_centre_spot() -> None:
    lesion = _ellipse(30, 40, 12, 16)  # up and left of the centre
    on_it = check_image("a", "benign", lesion, lesion.astype(np.float32))
    assert on_it.heatmap_peak and on_it.heatmap_share == pytest.approx(1.0)
    assert 0 < on_it.centre_share < 0.5 and on_it.lesion_area == pytest.approx(lesion.mean())
    beside = check_image("b", "malignant", lesion, (~lesion).astype(np.float32))
    assert not beside.heatmap_peak and beside.heatmap_share == 0.0
    assert beside.centre_share == on_it.centre_share  # the baseline ignores the map


def test_summarize_gives_figures_per_verdict_and_a_sentence() -> None:
    checks = [
        ImageCheck("a", "benign", 0.2, 0.3, True, 0.4, True),
        ImageCheck("b", "benign", 0.1, 0.1, False, 0.3, True),
        ImageCheck("c", "malignant", 0.3, 0.5, True, 0.5, False),
    ]
    cams = np.random.default_rng(3).random((4, H, W))
    report = summarize(checks, cams)
    assert report["scored"] == 4
    assert report["all"]["images"] == 3
    assert report["all"]["heatmap_share_on_lesion"] == pytest.approx(0.3)
    assert report["by_verdict"]["benign"]["heatmap_peak_on_lesion"] == pytest.approx(0.5)
    assert report["by_verdict"]["malignant"]["centre_peak_on_lesion"] == 0.0
    assert set(report["pattern"]) == {"correlation", "left_minus_right", "top_minus_bottom"}
    assert report["summary"].startswith("On 3 of 4 HAM10000 validation images")
    assert "even between left and right" in report["summary"]
    with pytest.raises(ValueError):
        summarize([], cams)


def test_otsu_agrees_with_scikit_image() -> None:
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(80, 20, 3000), rng.normal(170, 25, 9000)])
    assert otsu_threshold(values) == pytest.approx(threshold_otsu(values))
