"""What a batch endpoint call answers for one scored image, for tests that stand in for it."""

from __future__ import annotations

from typing import Any


def done_answer(key: str, **fields: Any) -> dict[str, Any]:
    """A ``done`` answer for ``key`` (benign, p 0.1), with ``fields`` replacing any of it."""
    return {
        "key": key,
        "status": "done",
        "verdict": "benign",
        "p_malignant": 0.1,
        "confidence": 0.9,
        "top_class": "nv",
        "ood_score": 1.0,
        "model_version": "t",
        **fields,
    }
