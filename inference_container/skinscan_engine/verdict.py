"""The decision rule: benign, malignant or "unknown", from ``p_malignant`` and the gate's score.

The serving engine answers one image at a time with it and the evaluation scores thousands at
once with it, so the rule lives here once: the gate is asked first (an image unlike the
training images gets no benign/malignant answer), then ``p_malignant`` is compared with the
card's threshold (at the threshold counts as malignant: a triage tool errs towards a second look).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VERDICTS = ("benign", "malignant", "unknown")  # the codes 0, 1, 2 of verdict_codes
BENIGN, MALIGNANT, UNKNOWN = range(3)


def is_unknown(ood_score: np.ndarray | Sequence[float], ood_threshold: float | None) -> np.ndarray:
    """Whether the gate rejects each image (never, for a card without a gate threshold)."""
    scores = np.asarray(ood_score, dtype=np.float64)
    if ood_threshold is None:
        return np.zeros(scores.shape, dtype=bool)
    return scores > ood_threshold


def verdict_codes(
    p_malignant: np.ndarray | Sequence[float],
    ood_score: np.ndarray | Sequence[float],
    threshold: float,
    ood_threshold: float | None,
) -> np.ndarray:
    """The verdict per image as a code: 0 benign, 1 malignant, 2 unknown (``VERDICTS[code]``)."""
    codes = (np.asarray(p_malignant, dtype=np.float64) >= threshold).astype(np.int8)
    codes[is_unknown(ood_score, ood_threshold)] = UNKNOWN
    return codes
