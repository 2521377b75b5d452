"""The one decision rule: the gate first, then the threshold (at the threshold is malignant)."""

from __future__ import annotations

from skinscan_engine.verdict import VERDICTS, is_unknown, verdict_codes


def test_unknown_wins_over_the_threshold() -> None:
    codes = verdict_codes([0.1, 0.3, 0.9, 0.9], [0.0, 0.0, 4.0, 5.0], 0.3, 4.0)
    assert [VERDICTS[c] for c in codes] == ["benign", "malignant", "malignant", "unknown"]


def test_without_a_gate_nothing_is_unknown() -> None:
    assert verdict_codes([0.1, 0.9], [99.0, 99.0], 0.5, None).tolist() == [0, 1]
    assert not is_unknown([99.0, 1e9], None).any()
