"""Housekeeping: what no request cleans up by itself, run on a schedule.

In AWS the ``housekeeping`` function runs it every hour (``infra/template.yaml``); the local
stack runs it at start-up and then every hour. Each step is safe to run at any time and any
number of times, also while requests and workers run:

- **sign-in sessions** whose last refresh token expired more than a day ago are deleted (a
  session's rotated tokens are kept while it lives: they detect a replayed token, and its first
  one dates the session for ``session_max_age_s``);
- **login attempts** whose window and lockout are over are deleted (they count for nothing);
- **abandoned uploads**: a prediction waiting for a photo that was never uploaded, although
  its upload form expired long ago, is deleted (it would stay "checking" in a history for ever);
- **stalled batch jobs**: a job with images still pending but no progress for
  ``batch_stall_s`` (its chunk was dead-lettered: the worker died on its last try) fails those
  images and is finished, so that its ``results.csv`` is written. Nothing is lost: a re-run of
  the job, or a late delivery of the chunk, scores the failed images again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, func, or_, select, tuple_, update

from skinscan_common.config import Settings
from skinscan_common.db.engine import session_scope
from skinscan_common.db.models import (
    BatchItem,
    BatchJob,
    LoginAttempt,
    Prediction,
    RefreshToken,
    utcnow,
)
from skinscan_common.observability import logger
from skinscan_common.services import batch, predictions, throttle
from skinscan_common.services.uploads import UPLOAD_PREFIX, is_form_upload_key
from skinscan_common.storage import ObjectStore

#: A session's tokens are kept this long after its last one expired (a late replay is still
#: recognised as one, and logged).
SESSION_GRACE_S = 24 * 3600
#: An upload form's photo may arrive late (S3 events are retried); after this long past the
#: form's expiry it will not.
UPLOAD_GRACE_S = 3600
#: Abandoned uploads looked at (and committed) per round.
UPLOAD_PAGE = 500
STALLED_ERROR = "not scored: its chunk was given up after its last try; re-run the job"


class HousekeepingError(RuntimeError):
    """Some steps failed (each is logged); the scheduler's retry or next run tries again."""


@dataclass
class HousekeepingReport:
    """What one run removed or finished."""

    sessions_purged: int = 0
    login_attempts_purged: int = 0
    abandoned_uploads_deleted: int = 0
    stalled_jobs_finished: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def purge_ended_sessions(db: Engine) -> int:
    """Delete the refresh tokens of sessions whose every token expired a day ago or more."""
    cutoff = utcnow() - timedelta(seconds=SESSION_GRACE_S)
    ended = (
        select(RefreshToken.family_id)
        .group_by(RefreshToken.family_id)
        .having(func.max(RefreshToken.expires_at) < cutoff)
    )
    with session_scope(db) as session:
        families = list(session.scalars(ended))
        for start in range(0, len(families), 500):
            session.execute(
                delete(RefreshToken).where(
                    RefreshToken.family_id.in_(families[start : start + 500])
                )
            )
    return len(families)


def purge_login_attempts(db: Engine, settings: Settings) -> int:
    """Delete login and sign-up counts that no longer count: window over, no lockout running."""
    now = utcnow()
    # One table for every count: a row is spent once the longest window is over.
    window_s = max(limit.window_s for limit in throttle.limits(settings).values())
    with session_scope(db) as session:
        return session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.window_started_at < now - timedelta(seconds=window_s),
                or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until <= now),
            )
        ).rowcount


def delete_abandoned_uploads(db: Engine, store: ObjectStore, settings: Settings) -> int:
    """Delete predictions still waiting for a photo long after their upload form expired, when
    the photo is not in the store (one that is there is being scored, or its event is retried).

    A page of :data:`UPLOAD_PAGE` at a time, each committed: a large backlog (forms are open to
    guests) shrinks run by run instead of timing out and rolling back as a whole.
    """
    cutoff = utcnow() - timedelta(seconds=settings.url_ttl_s + UPLOAD_GRACE_S)
    waiting = (
        Prediction.status == "pending",
        Prediction.created_at < cutoff,
        Prediction.image_key.startswith(UPLOAD_PREFIX),
    )
    deleted, after = 0, None
    while True:
        with session_scope(db) as session:
            query = select(Prediction).where(*waiting)
            if after is not None:  # keyset: rows kept (their photo is there) are not read again
                query = query.where(tuple_(Prediction.created_at, Prediction.id) > after)
            order = (Prediction.created_at, Prediction.id)
            page = session.scalars(query.order_by(*order).limit(UPLOAD_PAGE)).all()
            for row in page:
                if is_form_upload_key(row.image_key) and not store.exists(row.image_key):
                    predictions.delete(session, store, row)
                    deleted += 1
            if page:
                after = (page[-1].created_at, page[-1].id)
        if len(page) < UPLOAD_PAGE:
            return deleted


def finish_stalled_jobs(db: Engine, store: ObjectStore, settings: Settings) -> int:
    """Fail the pending images of jobs with no progress for ``batch_stall_s`` and nobody
    holding them, then write the jobs' results; returns the jobs finished."""
    now = utcnow()
    quiet_since = now - timedelta(seconds=settings.batch_stall_s)
    last_item_change = (
        select(func.max(BatchItem.updated_at))
        .where(BatchItem.job_id == BatchJob.id)
        .scalar_subquery()
    )
    held = (
        select(BatchItem.position)
        .where(BatchItem.job_id == BatchJob.id, BatchItem.leased_until > now)
        .exists()
    )
    with session_scope(db) as session:
        stalled = list(
            session.scalars(
                select(BatchJob.id).where(
                    BatchJob.status == "running",
                    BatchJob.updated_at < quiet_since,
                    or_(last_item_change.is_(None), last_item_change < quiet_since),
                    ~held,
                )
            )
        )
    finished = 0
    for job_id in stalled:
        with session_scope(db) as session:
            session.execute(
                update(BatchItem)
                .where(
                    BatchItem.job_id == job_id,
                    BatchItem.status == "pending",
                    or_(BatchItem.leased_until.is_(None), BatchItem.leased_until <= now),
                )
                .values(status="failed", error=STALLED_ERROR, owner=None, leased_until=None)
                .execution_options(synchronize_session=False)
            )
        try:
            done = batch.finalize(db, job_id, store, batch.JobLayout.for_bucket(job_id))
        except Exception:  # the next run tries again; the other jobs go on
            logger.exception("could not finish a stalled batch job", extra={"job_id": job_id})
            continue
        if done:
            logger.warning("stalled batch job finished", extra={"job_id": job_id})
            finished += 1
    return finished


def run(db: Engine, store: ObjectStore, settings: Settings) -> HousekeepingReport:
    """Every step once; a failing step is logged and the others still run."""
    report = HousekeepingReport()
    steps = (
        ("sessions_purged", lambda: purge_ended_sessions(db)),
        ("login_attempts_purged", lambda: purge_login_attempts(db, settings)),
        ("abandoned_uploads_deleted", lambda: delete_abandoned_uploads(db, store, settings)),
        ("stalled_jobs_finished", lambda: finish_stalled_jobs(db, store, settings)),
    )
    failed = []
    for name, step in steps:
        try:
            setattr(report, name, int(step()))
        except Exception:
            logger.exception("housekeeping step failed", extra={"step": name})
            failed.append(name)
    logger.info("housekeeping done", extra={**report.as_dict(), "failed_steps": failed})
    if failed:
        raise HousekeepingError(f"housekeeping steps failed: {', '.join(failed)}")
    return report
