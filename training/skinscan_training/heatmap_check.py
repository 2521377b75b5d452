"""Where the Grad-CAM heatmap points: on the lesion, or on the skin around it?

HAM10000 has no lesion outlines, so :func:`lesion_outline` draws a rough one: in a dermoscopic
image the lesion is the dark region near the middle (Otsu's threshold on the blurred
brightness; dark corners, the dermatoscope's vignette, are left out). On each image the check
measures the share of the heatmap's weight that lies on the lesion and whether its hottest
point does (:func:`on_lesion`), beside the same figures for a fixed spot at the image's centre
that knows nothing of the photo (:func:`centre_spot`): a heatmap that shows the lesion should
beat it. :func:`shared_pattern` measures how much of each map is the same for every photo.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Outlines covering less or more of the image than this are not trusted (a missed lesion, or
#: a threshold that took the skin).
USABLE_AREA = (0.02, 0.9)
#: The peak counts as on the lesion within this many pixels of the outline (at 128x96, about
#: the blur of the outline itself).
PEAK_MARGIN_PX = 3
#: A mean map whose halves differ by less than this (in units of its range) is even.
EVEN_WITHIN = 0.05


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that best splits ``values`` into two classes (Otsu, 1979)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = np.nan_to_num(weight_low * weight_high * (mean_low - mean_high) ** 2)
    # Every cut in an empty stretch between the groups scores the same: take its middle.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float((centres[best[0]] + centres[best[-1]]) / 2)


def lesion_outline(rgb: np.ndarray) -> np.ndarray | None:
    """A rough lesion mask (H x W bool) of an RGB uint8 image, or None when none is usable.

    The dark regions below Otsu's threshold are candidates; one that touches a corner is the
    vignette unless it covers most of the image; the largest, nearest the centre, is taken and
    its holes filled.
    """
    brightness = ndimage.gaussian_filter(rgb.astype(np.float32).mean(axis=2), sigma=2)
    if float(brightness.max() - brightness.min()) < 1.0:
        return None  # a flat image: nothing to outline
    labels, _ = ndimage.label(brightness < otsu_threshold(brightness))
    h, w = brightness.shape
    corners = {labels[0, 0], labels[0, -1], labels[-1, 0], labels[-1, -1]} - {0}
    best, best_score = 0, 0.0
    for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[rows, cols] == label
        area = int(region.sum())
        if label in corners and area < 0.6 * h * w:
            continue
        cy, cx = ndimage.center_of_mass(region)
        distance = np.hypot((rows.start + cy) / h - 0.5, (cols.start + cx) / w - 0.5)
        score = area * (1.0 - distance)
        if score > best_score:
            best, best_score = label, score
    if not best:
        return None
    mask = ndimage.binary_fill_holes(labels == best)
    return mask if USABLE_AREA[0] < mask.mean() < USABLE_AREA[1] else None


def on_lesion(cam: np.ndarray, mask: np.ndarray) -> tuple[float, bool]:
    """(share of the map's weight on the lesion, whether its hottest point is on the lesion)."""
    total = float(cam.sum())
    share = float((cam * mask).sum()) / total if total > 0 else 0.0
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    near = ndimage.binary_dilation(mask, iterations=PEAK_MARGIN_PX)
    return share, bool(near[peak])


@functools.cache  # one size per model: drawn once, not for every image
def centre_spot(height: int, width: int) -> np.ndarray:
    """A Gaussian spot at the image's centre (sigma a quarter of each side): the baseline."""
    yy, xx = np.mgrid[0:height, 0:width]
    spot = np.exp(
        -(((yy - height / 2) / (height / 4)) ** 2 + ((xx - width / 2) / (width / 4)) ** 2) / 2
    )
    spot.flags.writeable = False  # shared by every caller
    return spot


def shared_pattern(cams: np.ndarray) -> tuple[np.ndarray, float]:
    """(the mean map, the median correlation of each map with the mean of all the others).

    Near 1 the maps are one fixed pattern whatever the photo; near 0 each is its own.
    """
    n = len(cams)
    if n < 2:
        raise ValueError("the shared pattern needs at least two maps")
    flat = cams.reshape(n, -1).astype(np.float64)
    others = (flat.sum(axis=0) - flat) / (n - 1)  # leave each map out of its own reference
    a = flat - flat.mean(axis=1, keepdims=True)
    b = others - others.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return cams.mean(axis=0), float(np.nanmedian(corr))


def tilt(mean_map: np.ndarray) -> tuple[float, float]:
    """(left half minus right half, top half minus bottom half) of a map: 0 when balanced."""
    h, w = mean_map.shape
    left_right = mean_map[:, : w // 2].mean() - mean_map[:, w - w // 2 :].mean()
    top_bottom = mean_map[: h // 2].mean() - mean_map[h - h // 2 :].mean()
    return float(left_right), float(top_bottom)


@dataclass(frozen=True)
class ImageCheck:
    """One image: its verdict, the lesion's share of the image, heatmap and baseline figures."""

    name: str
    verdict: str
    lesion_area: float
    heatmap_share: float
    heatmap_peak: bool
    centre_share: float
    centre_peak: bool


def check_image(name: str, verdict: str, mask: np.ndarray, cam: np.ndarray) -> ImageCheck:
    """Measure one image's map against its lesion outline (:func:`lesion_outline`)."""
    share, peak = on_lesion(cam, mask)
    centre_share, centre_peak = on_lesion(centre_spot(*cam.shape), mask)
    return ImageCheck(name, verdict, float(mask.mean()), share, peak, centre_share, centre_peak)


def _figures(checks: Sequence[ImageCheck]) -> dict[str, float | int]:
    return {
        "images": len(checks),
        "lesion_area": float(np.mean([c.lesion_area for c in checks])),
        "heatmap_share_on_lesion": float(np.mean([c.heatmap_share for c in checks])),
        "heatmap_peak_on_lesion": float(np.mean([c.heatmap_peak for c in checks])),
        "centre_share_on_lesion": float(np.mean([c.centre_share for c in checks])),
        "centre_peak_on_lesion": float(np.mean([c.centre_peak for c in checks])),
    }


def _leaning(difference: float, first: str, second: str) -> str:
    """How a mean map leans between two halves, in words ('even' within ``EVEN_WITHIN``)."""
    if abs(difference) < EVEN_WITHIN:
        return f"even between {first} and {second}"
    low, high = (first, second) if difference < 0 else (second, first)
    return f"lower on the {low} than the {high} ({abs(difference):.2f} of the map's range)"


def summarize(checks: Iterable[ImageCheck], cams: np.ndarray) -> dict:
    """The figures over all outlined images and per verdict, with a sentence for the card.

    ``cams``: every scored image's map (N x H x W), outlined or not, for the shared pattern.
    """
    checks = list(checks)
    if not checks:
        raise ValueError("no image had a usable lesion outline")
    mean_map, correlation = shared_pattern(cams)
    left_right, top_bottom = tilt(mean_map)
    out: dict = {
        "scored": len(cams),
        "pattern": {
            "correlation": correlation,
            "left_minus_right": left_right,
            "top_minus_bottom": top_bottom,
        },
        "all": _figures(checks),
        "by_verdict": {},
    }
    for verdict in sorted({c.verdict for c in checks}):
        out["by_verdict"][verdict] = _figures([c for c in checks if c.verdict == verdict])
    a = out["all"]
    out["summary"] = (
        f"On {a['images']} of {len(cams)} HAM10000 validation images with a usable rough lesion "
        f"outline (the lesion covers {a['lesion_area']:.0%} of the image on average), "
        f"{a['heatmap_share_on_lesion']:.0%} of the heatmap's weight lies on the lesion and its "
        f"hottest point is on the lesion in {a['heatmap_peak_on_lesion']:.0%} of images. A fixed "
        f"spot at the centre of the image, which knows nothing of the photo, scores "
        f"{a['centre_share_on_lesion']:.0%} and {a['centre_peak_on_lesion']:.0%}. By verdict: "
        + "; ".join(
            f"{verdict} {f['heatmap_share_on_lesion']:.0%} and {f['heatmap_peak_on_lesion']:.0%}"
            f" ({f['images']} images)"
            for verdict, f in out["by_verdict"].items()
        )
        + f". Much of each map is one pattern shared by every photo: a map correlates at "
        f"{correlation:.2f} (median) with the mean of the other images' maps, and that mean is "
        f"{_leaning(left_right, 'left', 'right')} and {_leaning(top_bottom, 'top', 'bottom')}."
    )
    return out
