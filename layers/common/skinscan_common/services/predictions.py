"""Predictions: history listing with cursor pagination, reading, deleting, recording results."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from skinscan_common.db.models import Prediction, utcnow
from skinscan_common.errors import AppError, NotFoundError
from skinscan_common.observability import logger
from skinscan_common.schemas import (
    PredictionPage,
    PredictionResult,
    PredictionSummary,
    PredictionView,
)
from skinscan_common.security.tokens import hash_token
from skinscan_common.storage import ObjectStore, results_prefix

MAX_PAGE = 100
NOT_FOUND = "prediction not found"
#: The longest ``error`` a prediction keeps.
MAX_ERROR = 2000


def encode_cursor(created_at: datetime, prediction_id: uuid.UUID) -> str:
    """An opaque cursor pointing just after one row."""
    raw = json.dumps({"t": created_at.isoformat(), "id": str(prediction_id)}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The row a cursor points after; 400 when it was not made by :func:`encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(data["t"])
        if created_at.tzinfo is None:
            raise ValueError("naive")
        # In UTC here: a tampered date at the calendar's edge (0001-01-01T00:00+01:00) overflows
        # when converted, which must be this 400, not a 500 where the query binds it.
        return created_at.astimezone(UTC), uuid.UUID(data["id"])
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        # AttributeError: uuid.UUID() given a number instead of a string.
        raise AppError("invalid cursor", code="invalid_cursor") from exc


def list_predictions(
    session: Session,
    owner_id: uuid.UUID,
    *,
    limit: int = 20,
    cursor: str | None = None,
    verdict: str | None = None,
) -> PredictionPage:
    """The owner's predictions, newest first, ``limit`` at a time."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Prediction).where(Prediction.owner_id == owner_id)
    if verdict:
        query = query.where(Prediction.verdict == verdict)
    if cursor:
        created_at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Prediction.created_at < created_at,
                and_(Prediction.created_at == created_at, Prediction.id < last_id),
            )
        )
    query = query.order_by(Prediction.created_at.desc(), Prediction.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return PredictionPage(
        items=[PredictionSummary.model_validate(r) for r in rows], next_cursor=next_cursor
    )


def get_owned(session: Session, owner_id: uuid.UUID, prediction_id: uuid.UUID) -> Prediction:
    """The prediction if ``owner_id`` owns it; 404 otherwise (never 403: ids are not disclosed)."""
    row = session.get(Prediction, prediction_id)
    if row is None or row.owner_id is None or row.owner_id != owner_id:
        raise NotFoundError(NOT_FOUND)
    return row


def get_for_guest(
    session: Session, prediction_id: uuid.UUID, guest_token: str, ttl_s: int
) -> Prediction:
    """A guest's prediction, reachable only with its capability token, for ``ttl_s`` seconds.

    A guest has no account to sign out of, so the token itself must stop working: a link to a
    result that leaks (a shared screen, a browser history) opens nothing after a day.
    """
    row = session.get(Prediction, prediction_id)
    if (
        row is None
        or row.guest_token_hash is None
        or row.guest_token_hash != hash_token(guest_token)
        or row.created_at < utcnow() - timedelta(seconds=ttl_s)
    ):
        raise NotFoundError(NOT_FOUND)
    return row


def view(row: Prediction, store: ObjectStore, url_ttl_s: int) -> PredictionView:
    """The full answer for one prediction, with short-lived object URLs."""
    data: dict[str, Any] = PredictionSummary.model_validate(row).model_dump()
    # Heatmaps belong to an answer: a prediction being scored again (its photo replaced) or
    # failed may still name the last answer's files, which must not be shown with it.
    answered = row.status == "done"
    # A failed prediction's upload may be what was refused: not an image (a page or an SVG sent
    # as the photo), which a link would serve to whoever opens it. There is no photo to show.
    photo = row.image_key if row.status != "failed" else None
    urls = {
        "image_url": store.url(photo, url_ttl_s) if photo else None,
        "heatmap_url": (
            store.url(row.heatmap_key, url_ttl_s) if answered and row.heatmap_key else None
        ),
        "overlay_url": (
            store.url(row.overlay_key, url_ttl_s) if answered and row.overlay_key else None
        ),
    }
    return PredictionView(
        **data,
        probabilities=row.probabilities,
        ood_score=row.ood_score,
        reason=row.reason,
        error=row.error,
        urls_expire_in=url_ttl_s,
        **urls,
    )


def delete(session: Session, store: ObjectStore, row: Prediction) -> None:
    """Delete the row, then its objects: those it names and its whole results folder.

    The row goes first, so a scorer completing it meanwhile cannot leave heatmaps behind: one
    that wrote its row first is waited for (its heatmaps are then in the folder deleted next),
    one that comes after finds the row gone and deletes what it wrote (services.scoring). The
    folder, not only the keys on the row: a scorer writes the heatmaps before it records them.
    An object that cannot be deleted fails the call, and the caller's rollback keeps the row.
    """
    keys = [key for key in (row.image_key, row.heatmap_key, row.overlay_key) if key]
    folder = results_prefix(row.id, row.owner_id)
    session.delete(row)
    session.flush()
    for key in keys:
        store.delete(key)
    store.delete_prefix(folder)
    logger.info("prediction deleted", extra={"prediction_id": str(row.id)})


def create_pending(
    session: Session,
    *,
    image_key: str,
    owner_id: uuid.UUID | None = None,
    guest_token: str | None = None,
    prediction_id: uuid.UUID | None = None,
    source_etag: str | None = None,
) -> Prediction:
    """A new ``pending`` prediction (guests pass the capability token, stored hashed)."""
    row = Prediction(
        id=prediction_id or uuid.uuid4(),
        owner_id=owner_id,
        guest_token_hash=hash_token(guest_token) if guest_token else None,
        status="pending",
        image_key=image_key,
        source_etag=source_etag,
    )
    session.add(row)
    session.flush()
    return row


def record_result(
    row: Prediction,
    result: PredictionResult | dict[str, Any],
    *,
    heatmap_key: str | None = None,
    overlay_key: str | None = None,
) -> Prediction:
    """Fill a prediction with the model's answer and mark it ``done``."""
    res = (
        result if isinstance(result, PredictionResult) else PredictionResult.model_validate(result)
    )
    row.status = "done"
    row.verdict = res.verdict
    row.p_malignant = res.p_malignant
    row.confidence = res.confidence
    row.top_class = res.top_class
    row.probabilities = dict(res.probabilities)
    row.ood_score = res.ood_score
    row.reason = res.reason
    row.model_version = res.model_version
    row.heatmap_key = heatmap_key or row.heatmap_key
    row.overlay_key = overlay_key or row.overlay_key
    row.error = None
    row.completed_at = utcnow()
    return row


def reopen(row: Prediction) -> Prediction:
    """Back to ``pending`` with no answer, for a photo that must be scored again.

    The heatmap keys stay (scoring writes the same keys again; deleting the row deletes them);
    :func:`view` shows heatmaps only with a ``done`` answer.
    """
    row.status = "pending"
    row.verdict = row.p_malignant = row.confidence = row.top_class = None
    row.probabilities = row.ood_score = row.reason = row.model_version = None
    row.error = row.completed_at = None
    return row


def record_failure(row: Prediction, error: str) -> Prediction:
    """Mark a prediction ``failed`` with a message safe to show."""
    row.status = "failed"
    row.error = error[:MAX_ERROR]
    row.completed_at = utcnow()
    return row
