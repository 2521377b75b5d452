"""The threshold the model card stores, and figures a class's absence leaves undefined."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skinscan_training.calibration import threshold_for_sensitivity
from skinscan_training.metrics import binary_metrics, bootstrap_ci


def test_the_stored_threshold_keeps_every_malignant_image_the_exact_one_keeps() -> None:
    from skinscan_training.calibration import stored_threshold

    # Ten malignant images: the 9th-highest score, 0.123456, decides the 0.90 aim.
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.123456, 0.01, 0.05, 0.02, 0.1])
    y = np.array([True] * 10 + [False] * 3)
    exact = threshold_for_sensitivity(p, y, 0.90)
    assert binary_metrics(y, p, exact)["sensitivity"] == 0.9
    # Rounded to the nearest (0.1235) it would pass that score and miss the aim.
    assert binary_metrics(y, p, round(exact, 4))["sensitivity"] < 0.9
    assert stored_threshold(exact) == 0.1234
    assert binary_metrics(y, p, stored_threshold(exact))["sensitivity"] == 0.9


def test_the_stored_threshold_is_never_above_the_exact_one() -> None:
    from skinscan_training.calibration import stored_threshold

    rng = np.random.default_rng(0)
    exact = [*rng.random(20_000).tolist(), *(n / 10_000 for n in range(10_001))]
    exact += [math.nextafter(t, 0.0) for t in exact]  # just under a 4-decimal number
    for t in exact:
        stored = stored_threshold(t)
        assert stored <= t and t - stored < 1e-4 + 1e-12, t
        assert stored == round(stored, 4)
    assert stored_threshold(0.3) == 0.3 and stored_threshold(0.1141575) == 0.1141


def test_sensitivity_and_specificity_without_their_class_are_undefined() -> None:
    benign = binary_metrics(np.zeros(4, bool), np.array([0.1, 0.2, 0.8, 0.4]), threshold=0.5)
    assert math.isnan(benign["sensitivity"]) and benign["specificity"] == pytest.approx(3 / 4)
    malignant = binary_metrics(np.ones(3, bool), np.array([0.9, 0.2, 0.8]), threshold=0.5)
    assert math.isnan(malignant["specificity"]) and malignant["sensitivity"] == pytest.approx(2 / 3)


def test_the_bootstrap_leaves_out_resamples_without_a_malignant_image() -> None:
    # One malignant lesion of ten, always found: every resample that holds it has sensitivity
    # 1; those without it (about a third) are undefined, not 0, and must not widen the interval.
    y = np.array([True] + [False] * 9)
    p = np.array([0.9] + [0.1] * 9)
    ci = bootstrap_ci(lambda i: binary_metrics(y[i], p[i], 0.5)["sensitivity"], np.arange(10))
    assert ci == (1.0, 1.0)
