"""Batch jobs: a manifest of image keys, split into chunks, scored chunk by chunk, merged.

The same code runs the cloud job (``functions/batch_start`` puts chunk messages on SQS,
``functions/batch_worker`` scores them through the endpoint) and ``skinscan batch`` (an
in-process queue and the local engine, its state in a SQLite file next to the images).

Every image is a ``batch_items`` row; results are committed after each endpoint call, so a run
that dies half way loses at most the call in flight, and re-running the job (or re-delivering
a chunk) skips every image already scored. Images the model refuses (missing, not an image)
are ``rejected`` for good; images lost to an endpoint failure on a chunk's last try are
``failed`` and scored again when the job is re-run.

A delivery first leases the chunk's open images (``owner``, ``leased_until``). A second
delivery of the chunk at the same moment (SQS delivers at least once; a job re-run queues
chunks again) finds them leased and leaves them to the first, which still holds its message
and is retried if it dies; a lease that outlives its worker expires.

When no image is left pending, whoever finished last claims the job and writes
``results.csv`` (the columns of ``skinscan predict --csv``) from the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from skinscan_common.db.engine import session_scope
from skinscan_common.db.models import BatchItem, BatchJob, utcnow
from skinscan_common.observability import logger
from skinscan_common.services.batch_scoring import Blobs, output_keys
from skinscan_common.storage import InvalidKeyError, validate_key

#: The columns of ``results.csv`` and of ``skinscan predict --csv``.
RESULT_COLUMNS = (
    "image",
    "verdict",
    "p_malignant",
    "confidence",
    "top_class",
    "ood_score",
    "model_version",
    "error",
)
RESULT_FIELDS = ("verdict", "p_malignant", "confidence", "top_class", "ood_score", "model_version")
_JOB_NAME = re.compile(r"^[A-Za-z0-9._=+-]+(/[A-Za-z0-9._=+-]+)*$")
_INSERT_ROWS = 1000
Score = Callable[[list[dict[str, str]]], Sequence[dict[str, Any]]]


def _valid_job(job: str) -> bool:
    """A job name: plain path segments (no ``.`` or ``..``), at most 200 characters."""
    return (
        len(job) <= 200
        and bool(_JOB_NAME.match(job))
        and not any(part in (".", "..") for part in job.split("/"))
    )


class BatchError(ValueError):
    """A manifest, key or message that can't start or run a job (the message says why)."""


@dataclass(frozen=True)
class JobLayout:
    """Where a job's outputs go: per-chunk results, ``results.csv``, heatmaps (or none)."""

    results_key: str
    chunks_prefix: str
    heatmaps_prefix: str | None

    @classmethod
    def for_bucket(cls, job_id: str) -> JobLayout:
        """``batch/{job}/results.csv``, ``batch/{job}/chunks/``, ``batch/{job}/heatmaps/``."""
        return cls(
            f"batch/{job_id}/results.csv", f"batch/{job_id}/chunks/", f"batch/{job_id}/heatmaps/"
        )

    def chunk_key(self, chunk: int) -> str:
        return f"{self.chunks_prefix}{chunk:06d}.csv"


@dataclass(frozen=True)
class ChunkMessage:
    """One chunk of a job: the body of an SQS message (``{"job_id", "chunk"}``)."""

    job_id: str
    chunk: int

    def to_json(self) -> str:
        return json.dumps({"job_id": self.job_id, "chunk": self.chunk})

    @classmethod
    def from_json(cls, body: str) -> ChunkMessage:
        try:
            data = json.loads(body)
            message = cls(job_id=str(data["job_id"]), chunk=int(data["chunk"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BatchError('a chunk message is JSON {"job_id": str, "chunk": int}') from exc
        if message.chunk < 0 or not _valid_job(message.job_id):
            raise BatchError(f"invalid chunk message: {body[:200]!r}")
        return message


@dataclass
class ChunkReport:
    """What running one chunk did."""

    scored: int = 0
    skipped: int = 0  # scored (or refused) before this delivery
    in_flight: int = 0  # leased by another delivery of the chunk, left to it
    finished_job: bool = False


# -- manifests ----------------------------------------------------------------------------------


def job_of_manifest(key: str) -> str:
    """``batch/{job}/manifest.csv`` -> ``job``; :class:`BatchError` for any other key."""
    if key.startswith("batch/") and key.endswith("/manifest.csv"):
        job = key[len("batch/") : -len("/manifest.csv")]
        if _valid_job(job):
            return job
    raise BatchError(f"not a batch manifest key (batch/JOB/manifest.csv): {key!r}")


def parse_manifest(data: bytes) -> list[str]:
    """One object key per line (first CSV column); blank lines, ``#`` comments, an
    ``image``/``key`` header and repeated keys are skipped. :class:`BatchError` when empty."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError("the manifest is not UTF-8 text") from exc
    keys: list[str] = []
    seen: set[str] = set()
    for row in csv.reader(io.StringIO(text)):
        key = row[0].strip() if row else ""
        if not key or key.startswith("#") or key in seen:
            continue
        if not keys and key.lower() in ("image", "key"):
            continue
        seen.add(key)
        keys.append(key)
    if not keys:
        raise BatchError("the manifest lists no object keys (one key per line)")
    return keys


def chunk_count(total: int, chunk_size: int) -> int:
    return -(-total // chunk_size)


# -- starting a job -----------------------------------------------------------------------------


def _fingerprint(keys: Sequence[str], chunk_size: int) -> str:
    return hashlib.sha256(f"{chunk_size}\n".encode() + "\n".join(keys).encode()).hexdigest()


def _key_error(key: str, check_keys: bool) -> str | None:
    if not check_keys:
        return None
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        return str(exc)
    return None


def _write_items(
    session: Session, job_id: str, keys: Sequence[str], chunk_size: int, check_keys: bool
) -> None:
    """(Re)write the job's items, keeping the results of images already scored."""
    kept = {
        item.key: item
        for item in session.scalars(
            select(BatchItem).where(
                BatchItem.job_id == job_id, BatchItem.status.in_(("done", "rejected"))
            )
        )
    }
    keep_fields = (*RESULT_FIELDS, "status", "error", "heatmap_key", "overlay_key", "attempts")
    rows = []
    for position, key in enumerate(keys):
        row: dict[str, Any] = {
            "job_id": job_id,
            "position": position,
            "key": key,
            "chunk": position // chunk_size,
            "status": "pending",
            "attempts": 0,
            "updated_at": utcnow(),
        }
        if key in kept:
            row.update({name: getattr(kept[key], name) for name in keep_fields})
        elif (error := _key_error(key, check_keys)) is not None:
            row.update(status="rejected", error=error)
        rows.append(row)
    session.execute(delete(BatchItem).where(BatchItem.job_id == job_id))
    for start in range(0, len(rows), _INSERT_ROWS):
        session.execute(insert(BatchItem), rows[start : start + _INSERT_ROWS])


def start_job(
    session: Session,
    job_id: str,
    manifest_key: str,
    keys: Sequence[str],
    chunk_size: int,
    *,
    check_keys: bool = True,
) -> list[ChunkMessage]:
    """Create or re-run a job; the chunks that still have images to score.

    A re-run of the same manifest keeps every row and re-queues only images not yet scored
    (endpoint failures included); a changed manifest keeps the results of the keys it still
    lists. ``check_keys`` refuses keys that are not valid object keys (the bucket's rules).
    """
    if chunk_size < 1:
        raise BatchError("chunk size must be at least 1")
    fingerprint = _fingerprint(keys, chunk_size)
    # Locked (PostgreSQL): two starts of one job at the same moment run one after the other.
    job = session.get(BatchJob, job_id, with_for_update=True)
    if job is None:
        job = BatchJob(
            id=job_id, manifest_key=manifest_key, manifest_sha256="", chunk_size=chunk_size
        )
        session.add(job)
        session.flush()
    if job.manifest_sha256 == fingerprint:
        session.execute(
            update(BatchItem)
            .where(BatchItem.job_id == job_id, BatchItem.status == "failed")
            .values(status="pending", updated_at=utcnow())
        )
    else:
        _write_items(session, job_id, keys, chunk_size, check_keys)
    job.manifest_key, job.manifest_sha256, job.chunk_size = manifest_key, fingerprint, chunk_size
    job.total, job.chunks_total = len(keys), chunk_count(len(keys), chunk_size)
    job.status, job.completed_at = "running", None
    session.flush()
    refresh_progress(session, job)
    chunks = session.scalars(
        select(BatchItem.chunk)
        .where(BatchItem.job_id == job_id, BatchItem.status == "pending")
        .distinct()
        .order_by(BatchItem.chunk)
    )
    return [ChunkMessage(job_id, chunk) for chunk in chunks]


# -- progress and results -----------------------------------------------------------------------


def refresh_progress(session: Session, job: BatchJob) -> int:
    """Recount the job's progress from its items; returns how many are still pending."""
    counts = dict(
        session.execute(
            select(BatchItem.status, func.count())
            .where(BatchItem.job_id == job.id)
            .group_by(BatchItem.status)
        ).all()
    )
    open_chunks = session.scalar(
        select(func.count(func.distinct(BatchItem.chunk))).where(
            BatchItem.job_id == job.id, BatchItem.status == "pending"
        )
    )
    job.done = counts.get("done", 0)
    job.failed = counts.get("rejected", 0) + counts.get("failed", 0)
    job.chunks_done = job.chunks_total - int(open_chunks or 0)
    session.flush()
    return counts.get("pending", 0)


def results_csv(session: Session, job_id: str, chunk: int | None = None) -> bytes:
    """The job's (or one chunk's) rows in manifest order, as CSV."""
    query = select(BatchItem).where(BatchItem.job_id == job_id).order_by(BatchItem.position)
    if chunk is not None:
        query = query.where(BatchItem.chunk == chunk)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in session.scalars(query):
        row: dict[str, Any] = {"image": item.key, "error": item.error or ""}
        if item.status == "done":
            row.update({name: getattr(item, name) for name in RESULT_FIELDS})
        else:
            row.update(verdict="error", error=item.error or "not scored")
        writer.writerow(row)
    return out.getvalue().encode()


def finalize(db: Engine, job_id: str, out: Blobs, layout: JobLayout) -> bool:
    """Write ``results.csv`` if no image is pending and nobody else is writing it."""
    with session_scope(db) as session:
        job = session.get(BatchJob, job_id)
        if job is None or refresh_progress(session, job) > 0:
            return False
        claimed = session.execute(
            update(BatchJob)
            .where(BatchJob.id == job_id, BatchJob.status == "running")
            .values(status="finalizing", updated_at=utcnow())
        ).rowcount
    if not claimed:
        return False
    with session_scope(db) as session:
        out.put(layout.results_key, results_csv(session, job_id), "text/csv")
        job = session.get(BatchJob, job_id)
        assert job is not None
        job.status, job.results_key, job.completed_at = "done", layout.results_key, utcnow()
    logger.info("batch job finished", extra={"job_id": job_id, "results": layout.results_key})
    return True


# -- running a chunk ----------------------------------------------------------------------------


_OPEN = ("pending", "failed")


def _lease_open_items(
    session: Session, message: ChunkMessage, owner: str, lease_s: int
) -> tuple[list[str], int]:
    """Lease the chunk's open images that nobody else holds: (my keys, how many others hold).

    One conditional UPDATE takes them, so of two deliveries at the same moment each image goes
    to one. ``owner`` may take back its own lease (a redelivery of the same message).
    """
    now = utcnow()
    in_chunk = (
        BatchItem.job_id == message.job_id,
        BatchItem.chunk == message.chunk,
        BatchItem.status.in_(_OPEN),
    )
    session.execute(
        update(BatchItem)
        .where(
            *in_chunk,
            or_(
                BatchItem.leased_until.is_(None),
                BatchItem.leased_until < now,
                BatchItem.owner == owner,
            ),
        )
        .values(owner=owner, leased_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(BatchItem.key, BatchItem.owner).where(*in_chunk).order_by(BatchItem.position)
    ).all()
    mine = [key for key, holder in rows if holder == owner]
    return mine, len(rows) - len(mine)


def _release(db: Engine, job_id: str, keys: Sequence[str], owner: str) -> None:
    """Give back the leases still held (the endpoint failed): a retry may take them at once."""
    try:
        with session_scope(db) as session:
            session.execute(
                update(BatchItem)
                .where(
                    BatchItem.job_id == job_id,
                    BatchItem.key.in_(keys),
                    BatchItem.owner == owner,
                )
                .values(owner=None, leased_until=None)
                .execution_options(synchronize_session=False)
            )
    except Exception:  # the database may be what is down; the leases then expire
        logger.exception("could not release the chunk's leases", extra={"job_id": job_id})


def _items_by_key(session: Session, job_id: str, keys: Sequence[str]) -> dict[str, BatchItem]:
    # By key, not position: a changed manifest uploaded meanwhile renumbers the rows.
    query = select(BatchItem).where(BatchItem.job_id == job_id, BatchItem.key.in_(keys))
    return {item.key: item for item in session.scalars(query)}


def _record(session: Session, job_id: str, keys: Sequence[str], answers: Iterable[dict]) -> None:
    items = _items_by_key(session, job_id, keys)
    for key, answer in zip(keys, answers, strict=True):
        item = items.get(key)
        if item is None or item.status == "done":
            continue  # scored meanwhile by another delivery, or dropped from the manifest
        item.attempts += 1
        item.owner, item.leased_until = None, None
        if answer.get("status") == "done":
            for name in (*RESULT_FIELDS, "heatmap_key", "overlay_key"):
                setattr(item, name, answer.get(name))
            item.status, item.error = "done", None
        else:
            item.status, item.error = "rejected", str(answer.get("error") or "not scored")[:2000]


def _fail(session: Session, job_id: str, keys: Sequence[str], reason: str) -> None:
    session.execute(
        update(BatchItem)
        .where(
            BatchItem.job_id == job_id,
            BatchItem.key.in_(keys),
            BatchItem.status != "done",
        )
        .values(
            status="failed",
            error=reason[:2000],
            attempts=BatchItem.attempts + 1,
            owner=None,
            leased_until=None,
            updated_at=utcnow(),
        )
    )


def run_chunk(
    db: Engine,
    message: ChunkMessage,
    *,
    score: Score,
    out: Blobs,
    layout: JobLayout,
    invoke_size: int,
    last_try: bool,
    owner: str | None = None,
    lease_s: int = 960,
    on_scored: Callable[[int], None] | None = None,
) -> ChunkReport:
    """Score a chunk's open images ``invoke_size`` at a time, then write its results.

    ``owner`` names this delivery (the SQS message id; a fresh id when None); the images are
    leased to it for ``lease_s`` seconds, which should outlive the worker's timeout. Images
    another delivery holds are left to it; when it holds them all, nothing is written.
    An endpoint failure is raised (the message is retried); on ``last_try`` the open images
    are first marked ``failed``, the chunk is counted as finished and the job may complete.
    """
    owner = owner or uuid.uuid4().hex
    with session_scope(db) as session:
        job = session.get(BatchJob, message.job_id)
        if job is None:
            raise BatchError(f"no batch job {message.job_id!r}")
        open_items, held = _lease_open_items(session, message, owner, lease_s)
        size = session.scalar(
            select(func.count()).where(
                BatchItem.job_id == message.job_id, BatchItem.chunk == message.chunk
            )
        )
        if open_items and job.status != "running":
            job.status, job.completed_at = "running", None
    report = ChunkReport(skipped=int(size or 0) - len(open_items) - held, in_flight=held)
    if held and not open_items:
        logger.info(
            "chunk is being scored by another delivery",
            extra={"job_id": message.job_id, "chunk": message.chunk, "in_flight": held},
        )
        return report  # the holder writes the chunk's results and may finish the job
    failure: Exception | None = None
    for start in range(0, len(open_items), invoke_size):
        part = open_items[start : start + invoke_size]
        requests = [
            output_keys(layout.heatmaps_prefix, key) if layout.heatmaps_prefix else {"key": key}
            for key in part
        ]
        try:
            answers = score(requests)
            if len(answers) != len(part):
                raise BatchError("the endpoint answered the wrong number of results")
        except Exception as exc:
            if not last_try:
                _release(db, message.job_id, open_items[start:], owner)
                raise
            with session_scope(db) as session:
                _fail(session, message.job_id, open_items[start:], f"scoring failed: {exc}")
            failure = exc
            break
        with session_scope(db) as session:
            _record(session, message.job_id, part, answers)
            if (job := session.get(BatchJob, message.job_id)) is not None:
                refresh_progress(session, job)  # the job row shows live progress
        report.scored += len(part)
        if on_scored is not None:
            on_scored(len(part))
    with session_scope(db) as session:
        out.put(
            layout.chunk_key(message.chunk),
            results_csv(session, message.job_id, message.chunk),
            "text/csv",
        )
    report.finished_job = finalize(db, message.job_id, out, layout)
    if failure is not None:
        raise failure
    return report
