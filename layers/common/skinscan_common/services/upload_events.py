"""Scoring an uploaded photo once per S3 object version: the work behind ``functions/on_upload``.

Each event is claimed in ``upload_events`` under (bucket, key, ETag) before the endpoint is
called, so duplicate deliveries score once, also when they arrive at the same time. The endpoint
(the SageMaker container, or the in-process engine locally) writes the heatmaps and completes
the prediction row itself. What happens when something goes wrong:

* the photo is refused for what it is (too large, not an image: the endpoint answers 4xx) ->
  the prediction is ``failed`` with that reason; nothing to retry;
* the endpoint fails (5xx, throttled, unreachable, the database down while it completes the
  row) -> the prediction is ``failed`` with the reason, the claim is released and the error
  raised, so the asynchronous invocation retries and then lands in the dead-letter queue; the
  upload stays in the bucket and a retry or re-drive scores it again (``failed`` rows may be
  scored again; ``done`` rows are answered as they are);
* another invocation holds a live claim -> :class:`ScoringInFlightError`, so this delivery is
  retried later instead of being dropped (it then finds the event ``done``).

``source_etag`` names the bytes a ``done`` answer came from, recorded with the answer by whoever
scored (the endpoint, or ``POST /v1/predict``, which scores a photo before storing it under
``uploads/``): an event for those bytes calls no model, an event for other bytes rescores.

Two uploads the product did not plan for, since a presigned form stays valid for minutes:

* the form used again after its photo was scored (a new ETag for a ``done`` prediction) -> the
  prediction is scored again, so the verdict and heatmap shown always belong to the photo kept;
  also when the photo sent again is one sent before (A, B, then A: the third event's ETag is the
  first's, whose event is ``done``), since the prediction then holds B's outcome;
* an event for bytes the object no longer holds (its ETag is not the object's ETag now: the
  form was used again and this event is the older one, however late it comes) -> closed
  unscored; the newer bytes have their own event, which scores them;
* the form used after its prediction or its owner's account was deleted, or the prediction
  deleted while the photo is scored -> the photo and any heatmaps written for it are deleted,
  not kept without an owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from skinscan_common.db.engine import session_scope
from skinscan_common.db.models import Prediction, UploadEvent, utcnow
from skinscan_common.endpoint import EndpointClient, EndpointError
from skinscan_common.errors import AppError, StorageUnavailableError
from skinscan_common.observability import logger
from skinscan_common.s3events import S3Object
from skinscan_common.services import predictions
from skinscan_common.services.scoring import foreign_key_violation
from skinscan_common.services.uploads import is_form_upload_key, prediction_id_of
from skinscan_common.storage import GUEST, ObjectStore, results_prefix

Outcome = Literal["scored", "duplicate", "ignored", "rejected", "discarded", "superseded"]


class ScoringInFlightError(RuntimeError):
    """Another invocation is scoring this object right now; retry this delivery later."""


@dataclass
class UploadContext:
    """What scoring an upload needs; ``invocation_id`` owns the claim (Lambda request id)."""

    db: Engine
    endpoint: EndpointClient
    store: ObjectStore
    max_bytes: int
    claim_s: int
    invocation_id: str


def _pk(obj: S3Object) -> tuple[object, ...]:
    return (
        UploadEvent.bucket == obj.bucket,
        UploadEvent.key == obj.key,
        UploadEvent.etag == obj.etag,
    )


def _claim(ctx: UploadContext, obj: S3Object, prediction_id: uuid.UUID) -> str:
    """``claimed``, ``done`` (scored before), ``in_flight`` (someone else) or ``gone``."""
    now = utcnow()
    until = now + timedelta(seconds=ctx.claim_s)
    taking = {
        "status": "processing",
        "owner": ctx.invocation_id,
        "leased_until": until,
        "attempts": UploadEvent.attempts + 1,
        "updated_at": now,
    }
    try:
        with session_scope(ctx.db) as session:
            session.add(
                UploadEvent(
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    prediction_id=prediction_id,
                    status="processing",
                    owner=ctx.invocation_id,
                    leased_until=until,
                    attempts=1,
                )
            )
        return "claimed"
    except DBAPIError as exc:
        # Seen before (the key exists), or the prediction vanished (the reference to it fails:
        # pg8000 reports that as a ProgrammingError); either way, look below.
        if not isinstance(exc, IntegrityError) and not foreign_key_violation(exc):
            raise
    with session_scope(ctx.db) as session:
        taken = session.execute(
            update(UploadEvent)
            .where(
                *_pk(obj),
                UploadEvent.status != "done",
                or_(
                    UploadEvent.status == "failed",
                    UploadEvent.leased_until < now,
                    UploadEvent.owner == ctx.invocation_id,
                ),
            )
            .values(**taking)
        ).rowcount
        if taken:
            return "claimed"
        status = session.scalar(select(UploadEvent.status).where(*_pk(obj)))
    if status == "done" and _sent_again(ctx, obj, prediction_id):
        with session_scope(ctx.db) as session:
            # Only one delivery takes it again; the others find it in flight and retry later.
            taken = session.execute(
                update(UploadEvent).where(*_pk(obj), UploadEvent.status == "done").values(**taking)
            ).rowcount
        return "claimed" if taken else "in_flight"
    return {"done": "done", None: "gone"}.get(status, "in_flight")


def _sent_again(ctx: UploadContext, obj: S3Object, prediction_id: uuid.UUID) -> bool:
    """This done event's bytes were sent again with the form, after other bytes changed the
    prediction: the object holds them now and the prediction does not hold their outcome.

    A duplicate delivery finds its own outcome there (the answer for these bytes, or their
    refusal) and stays a no-op.
    """
    with session_scope(ctx.db) as session:
        row = session.get(Prediction, prediction_id)
        event = session.get(UploadEvent, (obj.bucket, obj.key, obj.etag))
        if row is None or event is None:
            return False
        if row.status == "done":
            # None: scored before source_etag was recorded, taken as it is.
            own = row.source_etag in (None, obj.etag)
        elif row.status == "failed":
            # This event's own refusal; not one it never gave (it scored or was superseded).
            own = event.error is not None and row.error == event.error[: predictions.MAX_ERROR]
        else:
            own = False  # pending: no outcome at all (this event was superseded, say)
    if own:
        return False
    try:
        current = ctx.store.etag(obj.key)
    except StorageUnavailableError:
        raise  # the delivery is retried, rather than this photo left with another's outcome
    except Exception:
        # As in handle_upload (S3 may answer 403 for a missing key): no proof it is back.
        logger.warning("could not read the object's ETag", extra={"key": obj.key}, exc_info=True)
        return False
    if current != obj.etag:
        return False
    logger.info(
        "photo sent again after another; scoring it again",
        extra={"key": obj.key, "etag": obj.etag, "prediction_etag": row.source_etag},
    )
    return True


def _discard(ctx: UploadContext, obj: S3Object, prediction_id: uuid.UUID) -> Outcome:
    """The photo of a deleted prediction (its form outlived it): delete it, and any heatmaps
    a scorer wrote for it, which nothing else would ever delete."""
    owner = obj.key.split("/")[1]  # uploads/{owner}/{id}: prediction_id_of checked the shape
    ctx.store.delete(obj.key)
    ctx.store.delete_prefix(
        results_prefix(prediction_id, None if owner == GUEST else uuid.UUID(owner))
    )
    logger.info("upload for a deleted prediction, photo deleted", extra={"key": obj.key})
    return "discarded"


def _finish(
    ctx: UploadContext,
    obj: S3Object,
    status: str,
    error: str | None = None,
    failure: str | None = None,
) -> None:
    """Close the claim; ``failure`` also marks the prediction failed with that reason."""
    with session_scope(ctx.db) as session:
        event = session.get(UploadEvent, (obj.bucket, obj.key, obj.etag))
        if event is not None:
            event.status, event.error, event.owner, event.leased_until = status, error, None, None
        row = session.get(Prediction, event.prediction_id) if event is not None else None
        if row is not None and failure is not None and row.status != "done":
            predictions.record_failure(row, failure)
        # source_etag is not set here: whoever scores records the bytes it scored, with the
        # answer (services.scoring), and a later event's claim may already have rescored.


def _release_quietly(ctx: UploadContext, obj: S3Object, error: str) -> None:
    try:
        _finish(ctx, obj, "failed", error)
    except Exception:  # the database may be the thing that is down; the claim then expires
        logger.exception("could not release the upload claim", extra={"key": obj.key})


def _exists(ctx: UploadContext, prediction_id: uuid.UUID) -> bool:
    with session_scope(ctx.db) as session:
        return session.get(Prediction, prediction_id) is not None


def _replaced_after_scoring(row: Prediction, obj: S3Object) -> bool:
    """A ``done`` prediction whose answer came from other bytes than this event's (a new ETag).

    ``source_etag`` names the bytes that were scored (recorded with the answer); None on rows
    scored before it was recorded, which are taken as they are.
    """
    return row.status == "done" and row.source_etag not in (None, obj.etag)


def _scored_from(row: Prediction, obj: S3Object) -> bool:
    """This event's bytes were scored already: nothing to do, no model call.

    A ``POST /v1/predict`` photo is scored before it is stored; rows it stored before
    ``source_etag`` was recorded have none, and their keys (with an extension) are never a
    form's, which another photo could replace.
    """
    if row.status != "done":
        return False
    return row.source_etag == obj.etag or (
        row.source_etag is None and not is_form_upload_key(obj.key)
    )


def _refusal(row: Prediction, obj: S3Object, max_bytes: int) -> str | None:
    if row.status == "done":
        return None
    if obj.size > max_bytes:
        return f"the photo is {obj.size} bytes; the limit is {max_bytes} bytes (10 MB)"
    if obj.size == 0:
        return "the uploaded file is empty"
    return None


def handle_upload(obj: S3Object, ctx: UploadContext) -> Outcome:
    """Score one uploaded object at most once; see the module docstring for failures."""
    prediction_id = prediction_id_of(obj.key)
    log = {"key": obj.key, "etag": obj.etag, "bucket": obj.bucket}
    if prediction_id is None:
        logger.warning("not an upload key, ignored", extra=log)
        return "ignored"
    with session_scope(ctx.db) as session:
        row = session.get(Prediction, prediction_id)
        if row is None and is_form_upload_key(obj.key):
            return _discard(ctx, obj, prediction_id)
        if row is None or row.image_key != obj.key:
            logger.warning("no prediction for this upload, ignored", extra=log)
            return "ignored"
    claim = _claim(ctx, obj, prediction_id)
    if claim == "gone" and is_form_upload_key(obj.key):
        return _discard(ctx, obj, prediction_id)  # deleted since it was read above
    if claim in ("done", "gone"):
        logger.info("duplicate upload event, already handled", extra=log)
        return "duplicate" if claim == "done" else "ignored"
    if claim == "in_flight":
        raise ScoringInFlightError(f"{obj.key} ({obj.etag}) is being scored by another invocation")
    try:
        current_etag = ctx.store.etag(obj.key)
    except Exception:
        # Only saves a model call, so a failed look (S3 answers 403 for a missing key when the
        # role may not list the bucket) scores the event as before.
        logger.warning("could not read the object's ETag", extra=log, exc_info=True)
        current_etag = None
    if current_etag is not None and current_etag != obj.etag:
        _finish(ctx, obj, "done", f"superseded: the object now holds ETag {current_etag}")
        logger.info("event for bytes since replaced; their own event scores them", extra=log)
        return "superseded"
    with session_scope(ctx.db) as session:
        row = session.get(Prediction, prediction_id)
        scored_already = row is not None and _scored_from(row, obj)
        if row is not None and _replaced_after_scoring(row, obj):
            predictions.reopen(row)
            logger.info("photo replaced after it was scored; scoring it again", extra=log)
        refusal = _refusal(row, obj, ctx.max_bytes) if row is not None else None
    if scored_already:
        # POST /v1/predict scored these bytes before storing them, or the endpoint completed
        # the row for them and this invocation's own last write was lost.
        _finish(ctx, obj, "done")
        logger.info("these bytes were scored already; nothing to do", extra=log)
        return "duplicate"
    if refusal is not None:
        _finish(ctx, obj, "done", refusal, failure=refusal)
        logger.info("upload refused", extra={**log, "reason": refusal})
        return "rejected"
    try:
        ctx.endpoint.score_object(obj.bucket, obj.key, str(prediction_id))
    except (EndpointError, AppError) as exc:
        # The row keeps words a person can read (the container's own for a refusal); the log
        # keeps the endpoint's full story.
        reason = exc.message if isinstance(exc, AppError) else exc.to_app_error().message
        permanent = exc.status_code < 500 if isinstance(exc, AppError) else exc.permanent
        # A refusal for what the photo is stands: its event is done, so a duplicate delivery
        # does not call the model again. Anything else may succeed on a retry.
        _finish(ctx, obj, "done" if permanent else "failed", reason, failure=reason)
        if permanent and is_form_upload_key(obj.key) and not _exists(ctx, prediction_id):
            # Deleted while it was scored: the scorer deleted its heatmaps; the photo goes too.
            return _discard(ctx, obj, prediction_id)
        if permanent:
            logger.info("upload refused by the model", extra={**log, "reason": reason})
            return "rejected"
        logger.error(
            "scoring failed; the invocation will be retried", extra={**log, "reason": str(exc)}
        )
        raise
    except BaseException as exc:
        _release_quietly(ctx, obj, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish(ctx, obj, "done")
    logger.info("upload scored", extra=log)
    return "scored"
