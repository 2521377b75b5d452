"""Classification metrics with lesion-grouped bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_score, roc_auc_score


def balanced_accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels``.

    A class no image belongs to has no recall, so it is left out of the mean; predicting it is
    still an error for the image's own class. (scikit-learn's ``balanced_accuracy_score`` gives
    the same figure but warns on every small or partial set, such as a ``--limit`` run.)
    """
    labels, pred = np.asarray(labels), np.asarray(pred)
    if labels.size == 0:
        return float("nan")
    return float(np.mean([(pred[labels == c] == c).mean() for c in np.unique(labels)]))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Malignant-vs-benign figures at ``threshold`` (p >= threshold means malignant).

    A figure a class's absence leaves undefined (sensitivity, specificity, AUC) is NaN.
    """
    y = np.asarray(y, bool)
    pred = np.asarray(p) >= threshold
    tp, fn = int((pred & y).sum()), int((~pred & y).sum())
    tn, fp = int((~pred & ~y).sum()), int((pred & ~y).sum())
    # Without a malignant (benign) image sensitivity (specificity) is undefined: NaN, as AUC,
    # not 0, so a bootstrap drops such resamples and a report shows null instead of a fail.
    out = {
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "accuracy": float((pred == y).mean()),
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
    }
    out["auc"] = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return out


def per_class_auc(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float]:
    """One-vs-rest ROC AUC for each class present in ``labels``."""
    out = {}
    for i, name in enumerate(classes):
        y = labels == i
        if 0 < y.sum() < len(y):
            out[name] = float(roc_auc_score(y, probs[:, i]))
    return out


def multiclass_metrics(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    return {
        "accuracy_7": float((pred == labels).mean()),
        "balanced_accuracy_7": balanced_accuracy(labels, pred),
        "auc_one_vs_rest": per_class_auc(labels, probs, classes),
        "confusion_matrix": confusion_matrix(labels, pred, labels=range(len(classes))).tolist(),
    }


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile CI of ``statistic(indices)`` resampling whole groups (lesions) with replacement.

    Several images of one lesion are not independent evidence; resampling lesions keeps the
    interval honest.
    """
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    values = []
    for _ in range(n_boot):
        picks = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[g] for g in picks])
        v = statistic(idx)
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
