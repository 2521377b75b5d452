"""The figures `skinscan evaluate` reports and the trainer picks epochs by."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from skinscan_training.metrics import (
    balanced_accuracy,
    binary_metrics,
    bootstrap_ci,
    multiclass_metrics,
)

CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 200)
    pred = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 7, 200))
    assert balanced_accuracy(labels, pred) == pytest.approx(balanced_accuracy_score(labels, pred))


def test_balanced_accuracy_of_a_partial_set_counts_absent_classes_as_errors_without_warning() -> (
    None
):
    labels = np.array([5, 5, 5, 4])  # two classes present
    pred = np.array([5, 6, 5, 4])  # one naevus called a vascular lesion, a class with no image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = balanced_accuracy(labels, pred)
    assert value == pytest.approx((2 / 3 + 1) / 2)
    assert np.isnan(balanced_accuracy(np.array([]), np.array([])))


def test_binary_metrics_count_the_decisions_at_the_threshold() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.1, 0.05])
    m = binary_metrics(y, p, threshold=0.5)
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (2, 1, 4, 1)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["auc"] == pytest.approx(12 / 15)  # 5 + 4 + 3 of the 15 malignant-benign pairs ordered


def test_binary_metrics_without_both_classes_have_no_auc() -> None:
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.8, 0.4]), threshold=0.5)
    assert np.isnan(m["auc"])
    assert m["specificity"] == pytest.approx(3 / 4)


def test_multiclass_metrics_report_every_class_in_the_confusion_matrix() -> None:
    labels = np.array([0, 4, 5, 5])
    probs = np.full((4, 7), 0.01)
    probs[[0, 1, 2, 3], [0, 5, 5, 6]] = 0.9
    m = multiclass_metrics(labels, probs, CLASSES)
    assert np.array(m["confusion_matrix"]).shape == (7, 7)
    assert m["accuracy_7"] == pytest.approx(2 / 4)
    assert m["balanced_accuracy_7"] == pytest.approx((1 + 0 + 1 / 2) / 3)
    assert set(m["auc_one_vs_rest"]) == {"akiec", "mel", "nv"}


def test_bootstrap_resamples_whole_lesions() -> None:
    # Two lesions of ten images each: a resample holds ten or twenty copies of one lesion, or
    # both, so the share of lesion "a" can only be 0, 1/2 or 1 — never a mix of single images.
    groups = np.array(["a"] * 10 + ["b"] * 10)
    is_a = groups == "a"
    shares: list[float] = []

    def share_of_a(idx: np.ndarray) -> float:
        shares.append(float(is_a[idx].mean()))
        return shares[-1]

    lo, hi = bootstrap_ci(share_of_a, groups, n_boot=200)
    assert set(shares) <= {0.0, 0.5, 1.0}
    assert (lo, hi) == (0.0, 1.0)


def test_bootstrap_interval_narrows_with_more_lesions() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=2000)

    def mean(idx: np.ndarray) -> float:
        return float(values[idx].mean())

    few = bootstrap_ci(mean, np.arange(2000) // 100)  # 20 lesions of 100 images
    many = bootstrap_ci(mean, np.arange(2000))  # 2000 lesions of one image
    assert few[0] < values.mean() < few[1]
    assert many[0] < values.mean() < many[1]
    assert many[1] - many[0] < few[1] - few[0]
