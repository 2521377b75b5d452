"""The evaluation scores verdicts and "unknown" answers by the engine's own rule."""

from __future__ import annotations

import numpy as np

from skinscan_training.evaluate import Scores, unknown_rate, verdicts


def _scores(p_malignant: list[float], ood: list[float]) -> Scores:
    n = len(p_malignant)
    return Scores(
        logits=np.zeros((n, 7)),
        probs=np.zeros((n, 7)),
        p_malignant=np.array(p_malignant),
        ood=np.array(ood),
    )


def test_unknown_wins_over_the_threshold() -> None:
    sc = _scores([0.1, 0.3, 0.9, 0.9], [0.0, 0.0, 0.0, 5.0])
    assert verdicts(sc, 0.3, 4.0).tolist() == [0, 1, 1, 2]  # at the threshold is malignant


def test_without_a_gate_nothing_is_unknown() -> None:
    sc = _scores([0.1, 0.9], [99.0, 99.0])
    assert verdicts(sc, 0.5, None).tolist() == [0, 1]


def test_unknown_rate_counts_the_gate_only() -> None:
    sc = _scores([0.9, 0.1, 0.5, 0.5], [5.0, 5.0, 4.0, 0.0])
    assert unknown_rate(sc, 4.0) == 0.5  # 4.0 itself is not above the threshold
    assert unknown_rate(sc, None) is None
