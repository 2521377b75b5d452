"""The in-process model endpoint: ``skinscan_common.endpoint.EndpointClient`` for the local stack.

``get_endpoint_client`` imports this class when ``SKINSCAN_ENDPOINT_MODE=local``; it answers
exactly what the SageMaker container answers, with the heatmaps as bytes instead of base64.
"""

from __future__ import annotations

import threading
from typing import Any

from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine, session_scope
from skinscan_common.endpoint import EndpointError
from skinscan_common.errors import AppError
from skinscan_common.services.batch_scoring import parse_items, score_objects
from skinscan_common.services.scoring import score_stored_object
from skinscan_common.storage import ObjectStore, build_object_store

from .serving import ScoringService


class LocalEndpointClient:
    """Loads the model once (``settings.model_path``) and scores through a micro-batcher.

    The model loads on first use (or at start-up through :meth:`warm_up`, which ``skinscan
    serve`` calls in the background: ``skinscan.model_preload``), so the local stack starts and
    serves everything else before a model is exported; until then predictions raise
    :class:`EndpointError`.
    """

    def __init__(self, settings: Settings | None = None, service: ScoringService | None = None):
        self.settings = settings or get_settings()
        self._service = service
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()

    @property
    def service(self) -> ScoringService:
        with self._lock:
            if self._service is None:
                try:
                    self._service = ScoringService.from_settings(self.settings)
                except (FileNotFoundError, ValueError) as exc:
                    raise EndpointError(
                        f"no usable model at {self.settings.model_path}: {exc}"
                    ) from exc
            return self._service

    def warm_up(self) -> float:
        """Load the model now and answer one synthetic photo; return the warm-up's seconds."""
        return self.service.warm_up()

    @property
    def model_version(self) -> str:
        return self.service.engine.version

    def predict_image(self, image: bytes, content_type: str = "") -> dict[str, Any]:
        """Result fields plus ``heatmap_png`` and ``overlay_png`` bytes; 4xx AppError on bad input.

        ``content_type`` is informational: the bytes are sniffed and decoded whatever it says.
        """
        return self.service.answer(image, heatmaps="bytes")

    def score_object(self, bucket: str, key: str, prediction_id: str) -> dict[str, Any]:
        """Score a stored photo, write its heatmaps next to it and complete its row."""
        if bucket != self.settings.bucket:
            raise AppError(f"unknown bucket {bucket!r}", code="unknown_bucket", status_code=404)
        if self._store is None:
            self._store = build_object_store(self.settings)
        with session_scope(get_engine(self.settings.database_url)) as session:
            outcome = score_stored_object(
                session,
                self._store,
                key=key,
                prediction_id=prediction_id,
                score=lambda data, _ct: self.service.answer(data, heatmaps="bytes"),
            )
        # The failed row is committed above; the caller still learns why.
        if outcome.error is not None:
            raise outcome.error
        assert outcome.answer is not None
        return outcome.answer

    def score_objects(self, bucket: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Score stored photos of a batch job and write their heatmaps (as the container does)."""
        if bucket != self.settings.bucket:
            raise AppError(f"unknown bucket {bucket!r}", code="unknown_bucket", status_code=404)
        if self._store is None:
            self._store = build_object_store(self.settings)
        return score_objects(self._store, parse_items(items), self.service.answer_many)

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
