"""Batch jobs: a manifest of image keys, split into chunks, scored chunk by chunk, merged.

The same code runs the cloud job (``functions/batch_start`` puts chunk messages on SQS,
``functions/batch_worker`` scores them through the endpoint) and ``skinscan batch`` (an
in-process queue and the local engine, its state in a SQLite file next to the images).

Every image is a ``batch_items`` row; results are committed after each endpoint call, so a run
that dies half way loses at most the call in flight, and re-running the job (or re-delivering
a chunk) skips every image already scored. Images the model refuses (not an image, too large)
and manifest lines that can't name an object (bad CSV, too long, a user's private key) are
``rejected`` for good; images lost to a failure on a chunk's last try, and images not (yet) in
the store, are ``failed`` and tried again when the job is re-run.

A delivery first leases the chunk's open images (``owner``, ``leased_until``). A second
delivery of the chunk at the same moment (SQS delivers at least once; a job re-run queues
chunks again) finds them leased and leaves them to the first, which still holds its message
and is retried if it dies; a lease that outlives its worker expires. On a chunk's last try
whatever fails (the endpoint, the database, a write) fails only the images it concerns, and the
chunk still finishes so that the job completes.

When no image is left pending, whoever finished last claims the job (``finalizing``), writes
``results.csv`` (the columns of ``skinscan predict --csv``) from the rows, then marks it
``done``. A failed write gives the claim back for the retried message; a claim left by a worker
that died is taken over once it is older than :data:`FINALIZE_STALE_S`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from skinscan_common.db.engine import session_scope
from skinscan_common.db.models import BatchItem, BatchJob, utcnow
from skinscan_common.observability import logger
from skinscan_common.services.batch_scoring import (
    NO_SUCH_IMAGE,
    Blobs,
    output_keys,
    private_key_error,
)
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
#: The longest key stored (``batch_items.key`` and S3 keys): longer ones are rejected, cut short.
MAX_KEY_BYTES = 1024
#: A ``finalizing`` claim older than this was left by a writer that died (a worker lives 900 s).
FINALIZE_STALE_S = 960
#: On a last try, after this many failed endpoint calls in a row the rest are not tried: the
#: endpoint is down, and waiting for each call's timeout would outlive the worker.
FAILED_CALLS_IN_A_ROW = 2
_JOB_NAME = re.compile(r"^[A-Za-z0-9._=+-]+(/[A-Za-z0-9._=+-]+)*$")
_LINE_BREAK = re.compile(r"\r\n?|\n")
_KEPT_FIELDS = (*RESULT_FIELDS, "status", "error", "heatmap_key", "overlay_key", "attempts")
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
    """Where a job's outputs go: per-chunk results, ``results.csv``, heatmaps (or none).

    ``bucket``: the outputs are object keys (at most :data:`MAX_KEY_BYTES`), not local paths.
    """

    results_key: str
    chunks_prefix: str
    heatmaps_prefix: str | None
    bucket: bool = False

    @classmethod
    def for_bucket(cls, job_id: str) -> JobLayout:
        """``batch/{job}/results.csv``, ``batch/{job}/chunks/``, ``batch/{job}/heatmaps/``."""
        return cls(
            f"batch/{job_id}/results.csv",
            f"batch/{job_id}/chunks/",
            f"batch/{job_id}/heatmaps/",
            bucket=True,
        )

    def chunk_key(self, chunk: int) -> str:
        return f"{self.chunks_prefix}{chunk:06d}.csv"

    def request(self, key: str) -> dict[str, str]:
        """The endpoint's item for ``key``: with where its PNGs go, when those keys can exist."""
        if self.heatmaps_prefix is None:
            return {"key": key}
        request = output_keys(self.heatmaps_prefix, key)
        longest = max(len(request[name].encode()) for name in ("heatmap_key", "overlay_key"))
        if self.bucket and longest > MAX_KEY_BYTES:
            return {"key": key}  # scored all the same, without heatmaps
        return request


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


@dataclass
class Manifest:
    """A manifest's keys in order, and why some of its lines can't name an object."""

    keys: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # key -> reason


def job_of_manifest(key: str) -> str:
    """``batch/{job}/manifest.csv`` -> ``job``; :class:`BatchError` for any other key."""
    if key.startswith("batch/") and key.endswith("/manifest.csv"):
        job = key[len("batch/") : -len("/manifest.csv")]
        if _valid_job(job):
            return job
    raise BatchError(f"not a batch manifest key (batch/JOB/manifest.csv): {key!r}")


def _line_key(line: str) -> tuple[str, str | None]:
    """A manifest line's key (its first CSV column) and, when the line is not CSV, why."""
    try:
        row = next(csv.reader([line], strict=True), [])
    except csv.Error as exc:  # a stray quote, a field over csv's size limit
        return line.strip(), f"not a CSV line ({exc})"
    return (row[0].strip() if row else ""), None


def parse_manifest(data: bytes) -> Manifest:
    """One object key per line (first CSV column); blank lines, ``#`` comments, an
    ``image``/``key`` header and repeated keys are skipped. :class:`BatchError` when empty.

    Each line is read on its own: a stray quote spoils its own line (refused, with the reason)
    rather than swallowing the lines after it into one key.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError("the manifest is not UTF-8 text") from exc
    manifest = Manifest([])
    seen: set[str] = set()
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        key, problem = _line_key(line)
        if not key or key.startswith("#") or key in seen:
            continue
        if not manifest.keys and problem is None and key.lower() in ("image", "key"):
            continue
        seen.add(key)
        manifest.keys.append(key)
        if problem is not None:
            manifest.refused[key] = f"manifest line {number}: {problem}"
    if not manifest.keys:
        raise BatchError("the manifest lists no object keys (one key per line)")
    return manifest


def chunk_count(total: int, chunk_size: int) -> int:
    return -(-total // chunk_size)


# -- starting a job -----------------------------------------------------------------------------


def _fingerprint(keys: Iterable[str], chunk_size: int) -> str:
    return hashlib.sha256(f"{chunk_size}\n".encode() + "\n".join(keys).encode()).hexdigest()


def _stand_in(key: str) -> str:
    """What is stored for a key that can't be: its start, printable and cut short, and a digest
    of the whole (two long keys that start alike stay two rows)."""
    raw = key.encode("utf-8", "backslashreplace")
    printable = raw.decode().replace("\x00", "\\x00")
    head = printable.encode()[:256].decode("utf-8", "ignore")
    return f"{head}... [{len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()[:16]}]"


def _unstorable(key: str) -> str | None:
    """Why ``key`` can't be a row's key (PostgreSQL's limits, S3's), or None."""
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        return "the name is not valid UTF-8"
    if "\x00" in key:
        return "the key contains a NUL character"
    if size > MAX_KEY_BYTES:
        return f"the key is {size} bytes long; object keys are at most {MAX_KEY_BYTES}"
    return None


def _screen(keys: Sequence[str], refused: Mapping[str, str]) -> dict[str, str | None]:
    """Each key as stored -> why it is refused (None: to be scored), in order, repeats dropped.

    A key that can't be stored is replaced by its :func:`_stand_in`, so that one bad line
    rejects only itself instead of failing the whole job's insert.
    """
    screened: dict[str, str | None] = {}
    for key in keys:
        problem = _unstorable(key)
        stored = key if problem is None else _stand_in(key)
        screened.setdefault(stored, refused.get(key) or problem)
    return screened


def _key_error(key: str, check_keys: bool) -> str | None:
    """Why a bucket job can't score ``key``, or None (local jobs: ``check_keys`` False)."""
    if not check_keys:
        return None
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        return str(exc)
    return private_key_error(key)


def _kept_results(session: Session, job_id: str) -> dict[str, dict[str, Any]]:
    """The job's final rows (done, rejected) by key: a changed manifest keeps them."""
    query = select(BatchItem.key, *(getattr(BatchItem, name) for name in _KEPT_FIELDS)).where(
        BatchItem.job_id == job_id, BatchItem.status.in_(("done", "rejected"))
    )
    return {
        row.key: {name: row._mapping[name] for name in _KEPT_FIELDS}
        for row in session.execute(query)
    }


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """A value in COPY's text format: ``\\N`` for NULL, backslash escapes in strings."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows: one ``COPY`` on PostgreSQL, where pg8000 runs an executemany as one
    round trip per row (100,000 keys took 37 s) and SQLAlchemy's multi-row ``VALUES`` spends
    longer still compiling; SQLite runs its executemany in-process."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(BatchItem), rows)
        return
    columns = list(rows[0])
    data = "".join("\t".join([_copy_field(row[name]) for name in columns]) + "\n" for row in rows)
    copy = f"COPY {BatchItem.__tablename__} ({', '.join(columns)}) FROM STDIN"
    cursor = session.connection().connection.cursor()  # pg8000's, in the session's transaction
    try:
        cursor.execute(copy, stream=io.BytesIO(data.encode()))
    finally:
        cursor.close()


def _write_items(
    session: Session,
    job_id: str,
    screened: Mapping[str, str | None],
    chunk_size: int,
    check_keys: bool,
) -> None:
    """(Re)write the job's items, keeping the results of images already scored."""
    kept = _kept_results(session, job_id)
    now = utcnow()
    rows = []
    for position, (key, refusal) in enumerate(screened.items()):
        # Every row has every column: COPY takes one column list for all.
        row: dict[str, Any] = dict.fromkeys(_KEPT_FIELDS)
        row.update(
            job_id=job_id,
            position=position,
            key=key,
            chunk=position // chunk_size,
            status="pending",
            attempts=0,
            owner=None,
            leased_until=None,
            updated_at=now,
        )
        if key in kept:
            row.update(kept[key])
        elif (error := refusal or _key_error(key, check_keys)) is not None:
            row.update(status="rejected", error=error[:2000])
        rows.append(row)
    session.execute(delete(BatchItem).where(BatchItem.job_id == job_id))
    _insert_items(session, rows)


def start_job(
    session: Session,
    job_id: str,
    manifest_key: str,
    keys: Sequence[str],
    chunk_size: int,
    *,
    check_keys: bool = True,
    refused: Mapping[str, str] | None = None,
) -> list[ChunkMessage]:
    """Create or re-run a job; the chunks that still have images to score.

    A re-run of the same manifest keeps every row and re-queues only images not yet scored
    (failures and images that were missing included); a changed manifest keeps the results of
    the keys it still lists. ``refused`` (:attr:`Manifest.refused`) and keys that can't be
    stored are rejected with their reason; ``check_keys`` also refuses keys that are not valid
    object keys (the bucket's rules) or that name users' photos and results.
    """
    if chunk_size < 1:
        raise BatchError("chunk size must be at least 1")
    screened = _screen(keys, refused or {})
    fingerprint = _fingerprint(screened, chunk_size)
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
        _write_items(session, job_id, screened, chunk_size, check_keys)
    job.manifest_key, job.manifest_sha256, job.chunk_size = manifest_key, fingerprint, chunk_size
    job.total, job.chunks_total = len(screened), chunk_count(len(screened), chunk_size)
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


def _claim_finishing(db: Engine, job_id: str) -> bool:
    """Mark the job ``finalizing`` if no image is pending and nobody else is finishing it
    (a ``finalizing`` older than :data:`FINALIZE_STALE_S` is a dead writer's: taken over)."""
    with session_scope(db) as session:
        job = session.get(BatchJob, job_id)
        if job is None or refresh_progress(session, job) > 0:
            return False
        stale = utcnow() - timedelta(seconds=FINALIZE_STALE_S)
        claimable = or_(
            BatchJob.status == "running",
            and_(BatchJob.status == "finalizing", BatchJob.updated_at < stale),
        )
        claimed = session.execute(
            update(BatchJob)
            .where(BatchJob.id == job_id, claimable)
            .values(status="finalizing", updated_at=utcnow())
        ).rowcount
    return bool(claimed)


def _give_back_claim(db: Engine, job_id: str) -> None:
    """``finalizing`` -> ``running``: the write failed; the retried message finishes the job."""
    try:
        with session_scope(db) as session:
            session.execute(
                update(BatchJob)
                .where(BatchJob.id == job_id, BatchJob.status == "finalizing")
                .values(status="running", updated_at=utcnow())
            )
    except Exception:  # the database may be what failed: the claim goes stale and is taken over
        logger.exception("could not give back the job's finalizing claim", extra={"job_id": job_id})


def finalize(db: Engine, job_id: str, out: Blobs, layout: JobLayout) -> bool:
    """Write ``results.csv`` and mark the job ``done`` if no image is pending and nobody else
    is writing it. ``done`` comes after the write, so a job is never done without its results;
    a failed write raises and leaves the job ``running`` for the caller's retry to finish."""
    if not _claim_finishing(db, job_id):
        return False
    try:
        with session_scope(db) as session:
            out.put(layout.results_key, results_csv(session, job_id), "text/csv")
            finished = session.execute(
                # Still ours: a re-run started meanwhile set it running, and finishes it again.
                update(BatchJob)
                .where(BatchJob.id == job_id, BatchJob.status == "finalizing")
                .values(
                    status="done",
                    results_key=layout.results_key,
                    completed_at=utcnow(),
                    updated_at=utcnow(),
                )
            ).rowcount
    except Exception:
        _give_back_claim(db, job_id)
        raise
    if finished:
        logger.info("batch job finished", extra={"job_id": job_id, "results": layout.results_key})
    return bool(finished)


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


def _update_quietly(
    db: Engine, job_id: str, keys: Sequence[str], *where: Any, **values: Any
) -> bool:
    """Update the job's items ``keys`` (and ``where``); False, logged, when the database is
    what is down (callers say what then happens to those images)."""
    try:
        with session_scope(db) as session:
            session.execute(
                update(BatchItem)
                .where(BatchItem.job_id == job_id, BatchItem.key.in_(keys), *where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    except Exception:
        logger.exception("could not update the chunk's images", extra={"job_id": job_id})
        return False
    return True


def _release(db: Engine, job_id: str, keys: Sequence[str], owner: str) -> None:
    """Give back the leases still held (the endpoint failed): a retry may take them at once.
    If the database is down, the leases expire instead."""
    _update_quietly(db, job_id, keys, BatchItem.owner == owner, owner=None, leased_until=None)


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
        error = str(answer.get("error") or "not scored")[:2000]
        if answer.get("status") == "done":
            for name in (*RESULT_FIELDS, "heatmap_key", "overlay_key"):
                setattr(item, name, answer.get(name))
            item.status, item.error = "done", None
        elif error == NO_SUCH_IMAGE:
            # Not uploaded yet, perhaps (a manifest sent with its images): a re-run tries again.
            item.status, item.error = "failed", error
        else:
            item.status, item.error = "rejected", error


def _fail(db: Engine, job_id: str, keys: Sequence[str], reason: str) -> None:
    """Mark the images not scored ``failed`` with ``reason`` (a re-run scores them again).
    If the database is down, the images stay pending (see run_chunk)."""
    _update_quietly(
        db,
        job_id,
        keys,
        BatchItem.status != "done",
        status="failed",
        error=reason[:2000],
        attempts=BatchItem.attempts + 1,
        owner=None,
        leased_until=None,
        updated_at=utcnow(),
    )


def _score_part(db: Engine, job_id: str, keys: list[str], score: Score, layout: JobLayout) -> None:
    """One endpoint call for ``keys``, its answers committed."""
    answers = score([layout.request(key) for key in keys])
    if len(answers) != len(keys):
        raise BatchError("the endpoint answered the wrong number of results")
    with session_scope(db) as session:
        _record(session, job_id, keys, answers)
        if (job := session.get(BatchJob, job_id)) is not None:
            refresh_progress(session, job)  # the job row shows live progress


def _write_chunk_results(db: Engine, message: ChunkMessage, out: Blobs, layout: JobLayout) -> None:
    with session_scope(db) as session:
        out.put(
            layout.chunk_key(message.chunk),
            results_csv(session, message.job_id, message.chunk),
            "text/csv",
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

    A failure is raised (the message is retried; the images not yet scored are released).
    On ``last_try`` a failed call (endpoint, database) marks only its own images ``failed``
    and the next call goes on; after :data:`FAILED_CALLS_IN_A_ROW` failed calls the rest are
    failed untried. The chunk's results are written and the job may complete whatever failed;
    the first failure is raised afterwards.
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
    log = {"job_id": message.job_id, "chunk": message.chunk}
    failure: Exception | None = None
    failed_in_a_row = 0
    for start in range(0, len(open_items), invoke_size):
        part = open_items[start : start + invoke_size]
        if failed_in_a_row >= FAILED_CALLS_IN_A_ROW:
            reason = f"not tried: {failed_in_a_row} calls in a row failed ({failure})"
            _fail(db, message.job_id, open_items[start:], reason)
            break
        try:
            _score_part(db, message.job_id, part, score, layout)
        except Exception as exc:
            if not last_try:
                _release(db, message.job_id, open_items[start:], owner)
                raise
            logger.exception("a call failed on the chunk's last try", extra=log)
            failure, failed_in_a_row = failure or exc, failed_in_a_row + 1
            _fail(db, message.job_id, part, f"scoring failed: {exc}")
            continue
        failed_in_a_row = 0
        report.scored += len(part)
        if on_scored is not None:
            on_scored(len(part))
    try:
        _write_chunk_results(db, message, out, layout)
    except Exception as exc:
        if not last_try:
            raise
        # results.csv holds the same rows: the job completes without this chunk's file.
        logger.exception("chunk results not written on the chunk's last try", extra=log)
        failure = failure or exc
    report.finished_job = finalize(db, message.job_id, out, layout)
    if failure is not None:
        raise failure
    return report
