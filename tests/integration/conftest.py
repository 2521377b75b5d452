"""Helpers for tests that need predictions in the database and objects in the store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import Prediction
from skinscan_common.deps import object_store
from skinscan_common.services import predictions
from skinscan_common.storage import ObjectStore, heatmap_key, image_key, overlay_key


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    """The same store instance the app uses."""
    return object_store(settings)


def result(verdict: str = "benign", p: float = 0.1) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "p_malignant": p,
        "confidence": 0.9,
        "top_class": "nv" if verdict == "benign" else "mel",
        "probabilities": {"nv": 1 - p, "mel": p},
        "ood_score": 0.2,
        "reason": "out of distribution" if verdict == "unknown" else None,
        "model_version": "test-1",
    }


@pytest.fixture
def make_prediction(session: Session, store: ObjectStore) -> Callable[..., Prediction]:
    """Create a finished prediction with image, heatmap and overlay objects."""

    def _make(
        owner_id: uuid.UUID | str | None,
        verdict: str = "benign",
        created_at: datetime | None = None,
    ) -> Prediction:
        owner = uuid.UUID(str(owner_id)) if owner_id else None
        pid = uuid.uuid4()
        keys = image_key(pid, owner, "jpg"), heatmap_key(pid, owner), overlay_key(pid, owner)
        for key, data in zip(keys, (b"JPEG", b"PNG-heat", b"PNG-over"), strict=True):
            store.put(key, data, "image/jpeg" if key.endswith(".jpg") else "image/png")
        row = predictions.create_pending(
            session, image_key=keys[0], owner_id=owner, prediction_id=pid
        )
        if created_at is not None:
            row.created_at = created_at
        predictions.record_result(
            row,
            result(verdict, 0.8 if verdict == "malignant" else 0.1),
            heatmap_key=keys[1],
            overlay_key=keys[2],
        )
        session.commit()
        return row

    return _make
