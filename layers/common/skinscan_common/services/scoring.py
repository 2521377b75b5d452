"""Storing model answers: inline predictions of signed-in users, and stored-object scoring.

The model runs elsewhere (the endpoint client: in-process engine or SageMaker container); this
module only moves its answer into object storage and the ``predictions`` table, so it never
imports torch. An endpoint answer is the result dict (``schemas.PredictionResult`` fields)
plus the heatmap PNGs either as bytes (``heatmap_png``, ``overlay_png``; in process) or as
base64 text (``heatmap_png_base64``, ``overlay_png_base64``; over HTTP).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from skinscan_common.db.models import Prediction
from skinscan_common.errors import AppError, ConflictError, NotFoundError, UnauthorizedError
from skinscan_common.observability import logger
from skinscan_common.s3events import etag_of
from skinscan_common.schemas import PredictionResult
from skinscan_common.services import predictions
from skinscan_common.storage import (
    ObjectNotFoundError,
    ObjectStore,
    heatmap_key,
    image_key,
    overlay_key,
)

#: Image types the model endpoint takes, with the extension their stored copy gets.
IMAGE_TYPES: dict[str, str] = {"image/jpeg": "jpg", "image/png": "png"}
PNG = "image/png"


@dataclass
class ScoredImage:
    """A model answer split into the result and its two PNGs."""

    result: PredictionResult
    heatmap_png: bytes | None
    overlay_png: bytes | None


@dataclass
class ScoreOutcome:
    """What scoring a stored object did: the row, and the answer or the error for the caller."""

    row: Prediction
    answer: dict[str, Any] | None
    error: AppError | None = None


def sniff_image_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` from the magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def _png(answer: dict[str, Any], name: str) -> bytes | None:
    raw = answer.get(name)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    text = answer.get(f"{name}_base64")
    if isinstance(text, str):
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AppError(
                "the model answered a corrupt heatmap", code="bad_model_answer", status_code=502
            ) from exc
    return None


def split_answer(answer: dict[str, Any]) -> ScoredImage:
    """Validate an endpoint answer and pull out its PNGs."""
    return ScoredImage(
        result=PredictionResult.model_validate(answer),
        heatmap_png=_png(answer, "heatmap_png"),
        overlay_png=_png(answer, "overlay_png"),
    )


def data_url(png: bytes | None) -> str | None:
    """An inline ``data:`` URL (guests' heatmaps are answered, never stored)."""
    return f"data:{PNG};base64,{base64.b64encode(png).decode()}" if png else None


def _put_heatmaps(
    store: ObjectStore, row: Prediction, scored: ScoredImage, written: list[str]
) -> tuple[str | None, str | None]:
    """Store the PNGs; each key is added to ``written`` once it is there."""
    keys: list[str | None] = []
    for png, key in (
        (scored.heatmap_png, heatmap_key(row.id, row.owner_id)),
        (scored.overlay_png, overlay_key(row.id, row.owner_id)),
    ):
        if png:
            store.put(key, png, PNG)
            written.append(key)
        keys.append(key if png else None)
    return keys[0], keys[1]


def _delete_quietly(store: ObjectStore, keys: list[str]) -> None:
    """Undo writes after a failure, which is what gets raised, not a failure to clean up."""
    for key in keys:
        try:
            store.delete(key)
        except Exception:
            logger.exception(
                "could not delete an object written before a failure", extra={"key": key}
            )


def foreign_key_violation(exc: DBAPIError) -> bool:
    """A foreign-key violation: pg8000 reports SQLSTATE 23503 as a ProgrammingError, SQLite as
    an IntegrityError."""
    details = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    if isinstance(details, dict):
        return details.get("C") == "23503"
    return isinstance(exc, IntegrityError) and "FOREIGN KEY" in str(exc.orig)


def store_prediction(
    session: Session,
    store: ObjectStore,
    *,
    owner_id: uuid.UUID,
    image: bytes,
    content_type: str,
    answer: dict[str, Any],
) -> Prediction:
    """Keep a signed-in user's inline prediction: the row, then photo, heatmap and overlay.

    The row comes first: its reference to the user makes a deletion of the account in progress
    either wait for this scan (and then delete it) or win (the insert then fails, 401, and no
    object was written). Objects written before a later failure are deleted again.
    """
    scored = split_answer(answer)
    prediction_id = uuid.uuid4()
    ext = IMAGE_TYPES.get(content_type, "bin")
    photo_key = image_key(prediction_id, owner_id, ext)
    try:
        row = predictions.create_pending(
            session,
            image_key=photo_key,
            owner_id=owner_id,
            prediction_id=prediction_id,
            source_etag=etag_of(image),  # the bytes this answer came from (their event: no-op)
        )
    except DBAPIError as exc:
        if not foreign_key_violation(exc):
            raise
        session.rollback()
        raise UnauthorizedError("account no longer exists", code="account_deleted") from exc
    written: list[str] = []
    try:
        store.put(photo_key, image, content_type)
        written.append(photo_key)
        hm_key, ov_key = _put_heatmaps(store, row, scored, written)
        predictions.record_result(row, scored.result, heatmap_key=hm_key, overlay_key=ov_key)
        session.flush()
    except BaseException:
        _delete_quietly(store, written)
        raise
    return row


def result_of(row: Prediction) -> dict[str, Any]:
    """A finished row's result dict (the shape endpoints answer)."""
    return PredictionResult(
        verdict=row.verdict,  # type: ignore[arg-type]
        p_malignant=row.p_malignant or 0.0,
        confidence=row.confidence or 0.0,
        top_class=row.top_class or "",
        probabilities=row.probabilities or {},
        ood_score=row.ood_score or 0.0,
        reason=row.reason,
        model_version=row.model_version or "",
    ).model_dump()


def score_stored_object(
    session: Session,
    store: ObjectStore,
    *,
    key: str,
    prediction_id: str | uuid.UUID,
    score: Callable[[bytes, str], dict[str, Any]],
) -> ScoreOutcome:
    """Score the photo at ``key`` for a pending prediction and complete its row.

    ``score(image, content_type)`` is the model; an :class:`AppError` with a 4xx status from it
    (an unreadable image) marks the row ``failed`` and comes back in the outcome, so the caller
    can commit the row and still answer 4xx. A row already ``done`` is answered as it is:
    retried invocations do no work twice. A row deleted while the model ran (its owner deleted
    the prediction) is :class:`NotFoundError`, and the heatmaps written for it are deleted.
    """
    try:
        pid = uuid.UUID(str(prediction_id))
    except ValueError as exc:
        raise AppError("prediction_id is not a UUID", code="invalid_prediction_id") from exc
    row = session.get(Prediction, pid)
    if row is None:
        raise NotFoundError("prediction not found")
    if row.image_key != key:
        raise ConflictError("the key is not this prediction's image", code="key_mismatch")
    if row.status == "done":
        return ScoreOutcome(row=row, answer=result_of(row))
    try:
        image = store.get(key)
    except ObjectNotFoundError as exc:
        raise NotFoundError("the image is not in the bucket", code="object_not_found") from exc
    content_type = sniff_image_type(image) or "application/octet-stream"
    try:
        answer = score(image, content_type)
    except AppError as exc:
        if exc.status_code >= 500:
            raise
        predictions.record_failure(row, exc.message)
        _flush_unless_deleted(session, pid)
        return ScoreOutcome(row=row, answer=None, error=exc)
    scored = split_answer(answer)
    written: list[str] = []
    try:
        hm_key, ov_key = _put_heatmaps(store, row, scored, written)
        predictions.record_result(row, scored.result, heatmap_key=hm_key, overlay_key=ov_key)
        # Recorded with the answer, in one commit: an upload event for other bytes (the form
        # used again) then sees at once that this answer is not theirs.
        row.source_etag = etag_of(image)
        _flush_unless_deleted(session, pid)
    except BaseException:
        # Nothing would ever delete the PNGs of a row that is gone (or an answer not recorded:
        # a retry writes them again). Once the flush succeeded the row is locked until commit,
        # so a deletion waits for it and then deletes the results folder itself.
        _delete_quietly(store, written)
        raise
    return ScoreOutcome(row=row, answer=scored.result.model_dump())


def _flush_unless_deleted(session: Session, prediction_id: uuid.UUID) -> None:
    """Write the row; :class:`NotFoundError` when it was deleted meanwhile (no row updated)."""
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        logger.info(
            "prediction deleted while it was scored", extra={"prediction_id": str(prediction_id)}
        )
        raise NotFoundError("prediction not found", code="prediction_deleted") from exc
