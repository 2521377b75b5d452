"""Batch jobs that must still finish: failed writes, dead writers, last tries, poison keys.

Each test drives ``run_chunk`` and ``finalize`` on a real database (both backends unless the
failure is PostgreSQL's own); S3 and SQS are moto's (``mock_aws``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import moto.sqs.models
import pytest
from moto import mock_aws
from sqlalchemy import select, update

from functions.batch_worker import app as batch_worker_fn
from skinscan_common.config import Settings
from skinscan_common.db import BatchItem, BatchJob, get_engine, session_scope
from skinscan_common.db.models import utcnow
from skinscan_common.services import batch
from skinscan_common.services.batch_scoring import score_objects
from skinscan_common.storage import ObjectNotFoundError
from skinscan_common.storage.s3 import S3ObjectStore
from tests.support.batch_answers import done_answer

LAYOUT = batch.JobLayout.for_bucket("job")
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"0" * 16
REGION = "eu-west-1"


class DictBlobs:
    """A bucket in a dict; ``fail(key)`` True makes that PUT fail as S3 may (503)."""

    def __init__(self, fail: Callable[[str], bool] = lambda _key: False) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = fail

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        return self.objects[key]

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        if self.fail(key):
            raise RuntimeError(f"S3 503 SlowDown on {key}")
        self.objects[key] = data


def _answer(item: dict[str, str], **fields: Any) -> dict[str, Any]:
    return done_answer(item["key"], **fields)


def _fine(items: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [_answer(item) for item in items]


def _model(images: list[bytes]) -> list[dict[str, Any]]:
    """What ``ScoringService.answer_many`` answers, PNGs included."""
    return [
        {
            **_answer({"key": ""}),
            "probabilities": {"nv": 0.9},
            "heatmap_png": PNG_BYTES,
            "overlay_png": PNG_BYTES,
        }
        for _ in images
    ]


def _start(settings: Settings, keys: list[str], chunk_size: int = 64) -> list[batch.ChunkMessage]:
    with session_scope(get_engine(settings.database_url)) as session:
        return batch.start_job(session, "job", "batch/job/manifest.csv", keys, chunk_size)


def _run(
    settings: Settings, message: batch.ChunkMessage, score: batch.Score, out: Any, **kw: Any
) -> batch.ChunkReport:
    return batch.run_chunk(
        get_engine(settings.database_url),
        message,
        score=score,
        out=out,
        layout=LAYOUT,
        invoke_size=kw.pop("invoke_size", 2),
        last_try=kw.pop("last_try", False),
        owner=kw.pop("owner", "message-1"),
        **kw,
    )


def _job(settings: Settings) -> tuple[str, int, int, str | None]:
    with session_scope(get_engine(settings.database_url)) as session:
        job = session.get(BatchJob, "job")
        assert job is not None
        return job.status, job.done, job.failed, job.results_key


def _items(settings: Settings) -> list[tuple[str, str, str | None]]:
    with session_scope(get_engine(settings.database_url)) as session:
        query = select(BatchItem).order_by(BatchItem.position)
        return [(i.key, i.status, i.error) for i in session.scalars(query)]


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# -- finishing the job --------------------------------------------------------------------------


def test_a_failed_results_write_is_finished_by_the_retry(settings: Settings) -> None:
    """results.csv's PUT fails once: the job goes back to running, the retry finishes it."""
    (chunk,) = _start(settings, [f"images/{i}.jpg" for i in range(3)])
    failures = iter([True])
    out = DictBlobs(fail=lambda key: key == LAYOUT.results_key and next(failures, False))
    with pytest.raises(RuntimeError, match="503"):
        _run(settings, chunk, _fine, out)
    assert _job(settings) == ("running", 3, 0, None)
    report = _run(settings, chunk, _fine, out)  # SQS delivers the message again
    assert (report.scored, report.finished_job) == (0, True)
    assert _job(settings) == ("done", 3, 0, LAYOUT.results_key)
    assert [r["verdict"] for r in _rows(out.objects[LAYOUT.results_key])] == ["benign"] * 3


def test_a_dead_writers_claim_is_taken_over_once_stale(settings: Settings) -> None:
    """A worker that died between claiming the job and writing results.csv."""
    db = get_engine(settings.database_url)
    (chunk,) = _start(settings, ["images/a.jpg", "images/b.jpg"])
    _run(settings, chunk, _fine, DictBlobs())
    # Replayed: a worker claimed the job a minute ago and died before writing results.csv.
    with session_scope(db) as session:
        session.execute(
            update(BatchJob).values(
                status="finalizing",
                results_key=None,
                completed_at=None,
                updated_at=utcnow() - timedelta(seconds=60),
            )
        )
    out = DictBlobs()
    # A fresh claim may be a live writer: left to it.
    assert not _run(settings, chunk, _fine, out, owner="message-2").finished_job
    assert _job(settings)[0] == "finalizing" and LAYOUT.results_key not in out.objects
    stale = utcnow() - timedelta(seconds=batch.FINALIZE_STALE_S + 1)
    with session_scope(db) as session:
        session.execute(update(BatchJob).values(updated_at=stale))
    assert _run(settings, chunk, _fine, out, owner="message-2").finished_job
    assert _job(settings) == ("done", 2, 0, LAYOUT.results_key)
    assert len(_rows(out.objects[LAYOUT.results_key])) == 2


# -- the last try -----------------------------------------------------------------------------


def test_last_try_finishes_the_job_when_the_chunk_csv_write_fails(settings: Settings) -> None:
    (chunk,) = _start(settings, [f"images/{i}.jpg" for i in range(4)])
    out = DictBlobs(fail=lambda key: key.startswith(LAYOUT.chunks_prefix))
    with pytest.raises(RuntimeError, match="503"):  # still reported: the DLQ alarm tells
        _run(settings, chunk, _fine, out, last_try=True)
    assert _job(settings) == ("done", 4, 0, LAYOUT.results_key)
    assert len(_rows(out.objects[LAYOUT.results_key])) == 4


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_last_try_finishes_the_job_when_recording_fails(settings: Settings) -> None:
    """The database refuses one call's answers (too long for its column): only that call's
    images fail; the chunk goes on and the job completes."""
    keys = [f"images/{i}.jpg" for i in range(6)]
    (chunk,) = _start(settings, keys)

    def score(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        poison = any(item["key"] == "images/2.jpg" for item in items)
        return [_answer(item, top_class="x" * 100 if poison else "nv") for item in items]

    out = DictBlobs()
    with pytest.raises(Exception, match="too long"):
        _run(settings, chunk, score, out, last_try=True)
    statuses = [status for _key, status, _error in _items(settings)]
    assert statuses == ["done", "done", "failed", "failed", "done", "done"]
    assert "scoring failed" in (_items(settings)[2][2] or "")
    assert _job(settings) == ("done", 4, 2, LAYOUT.results_key)


def test_last_try_fails_only_the_calls_that_failed(settings: Settings) -> None:
    """One image breaks its whole endpoint call: the calls after it are still made; after
    FAILED_CALLS_IN_A_ROW failed calls the endpoint is taken for down."""
    keys = [f"images/{i}.jpg" for i in range(10)]
    (chunk,) = _start(settings, keys)
    calls: list[list[str]] = []

    def score(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        calls.append([item["key"] for item in items])
        if any(item["key"] in ("images/1.jpg", "images/6.jpg", "images/8.jpg") for item in items):
            raise RuntimeError("CUDA error: device-side assert")
        return _fine(items)

    out = DictBlobs()
    with pytest.raises(RuntimeError, match="CUDA"):
        _run(settings, chunk, score, out, last_try=True)
    assert len(calls) == 5  # [0,1] failed, [2,3] and [4,5] answered, [6,7] and [8,9] failed
    statuses = [status for _key, status, _error in _items(settings)]
    assert statuses == ["failed"] * 2 + ["done"] * 4 + ["failed"] * 4
    assert _job(settings)[0] == "done"
    rows = _rows(out.objects[LAYOUT.results_key])
    assert "device-side assert" in rows[0]["error"] and rows[2]["verdict"] == "benign"
    # FAILED_CALLS_IN_A_ROW (2) calls in a row failed: the rest were not tried.
    many = [f"images/m{i}.jpg" for i in range(8)]
    with session_scope(get_engine(settings.database_url)) as session:
        (again,) = batch.start_job(session, "job", "batch/job/manifest.csv", many, 64)
    calls.clear()

    def down(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        calls.append([item["key"] for item in items])
        raise RuntimeError("endpoint unavailable")

    with pytest.raises(RuntimeError):
        _run(settings, again, down, out, last_try=True)
    assert len(calls) == batch.FAILED_CALLS_IN_A_ROW
    assert {status for _key, status, _error in _items(settings)} == {"failed"}
    assert "not tried" in (_items(settings)[-1][2] or "") and _job(settings)[0] == "done"


# -- heatmaps that can't be written -----------------------------------------------------------


@pytest.fixture(name="bucket")
def bucket_fixture() -> Iterator[S3ObjectStore]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket="batch-test", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield S3ObjectStore("batch-test", client=s3)


def test_a_key_too_long_for_its_heatmap_is_scored_without_one(
    settings: Settings, bucket: S3ObjectStore
) -> None:
    """A valid key whose heatmap key would pass S3's 1,024 bytes: scored, no heatmap, and
    the other images of its call keep theirs (the last try fails nothing)."""
    long_key = "images/" + "d" * 1000 + ".jpg"  # 1,011 characters: a valid key
    keys = ["images/a.jpg", long_key, "images/b.jpg"]
    for key in keys:
        bucket.put(key, b"JPEG")
    (chunk,) = _start(settings, keys)
    report = _run(
        settings,
        chunk,
        lambda items: score_objects(bucket, items, _model),
        bucket,
        invoke_size=3,
        last_try=True,
    )
    assert report.finished_job
    assert [status for _key, status, _error in _items(settings)] == ["done"] * 3
    with session_scope(get_engine(settings.database_url)) as session:
        heatmaps = list(session.scalars(select(BatchItem.heatmap_key).order_by(BatchItem.position)))
    assert heatmaps == [
        f"batch/job/heatmaps/{k}.heatmap.png" if k != long_key else None for k in keys
    ]
    assert bucket.get("batch/job/heatmaps/images/b.jpg.overlay.png") == PNG_BYTES


def _batch_item(name: str) -> dict[str, str]:
    return {
        "key": f"images/{name}",
        "heatmap_key": f"batch/out/{name}.heatmap.png",
        "overlay_key": f"batch/out/{name}.overlay.png",
    }


def test_a_heatmap_write_that_fails_costs_only_its_image() -> None:
    blobs = DictBlobs(fail=lambda key: key.startswith("batch/out/b.jpg.overlay"))
    items = [_batch_item("a.jpg"), _batch_item("b.jpg"), _batch_item("c.jpg")]
    for item in items:
        blobs.objects[item["key"]] = b"JPEG"
    answers = score_objects(blobs, items, _model)
    assert [a["status"] for a in answers] == ["done"] * 3
    assert answers[1]["heatmap_key"] == "batch/out/b.jpg.heatmap.png"
    assert answers[1]["overlay_key"] is None and answers[2]["overlay_key"]
    assert "batch/out/c.jpg.overlay.png" in blobs.objects


# -- images that arrive late --------------------------------------------------------------------


def test_an_image_missing_at_first_is_scored_by_a_rerun(settings: Settings) -> None:
    """The manifest was uploaded before one of its images: a re-run scores that one."""
    keys = ["images/a.jpg", "images/late.jpg"]
    blobs = DictBlobs()
    blobs.objects["images/a.jpg"] = b"JPEG"
    score = lambda items: score_objects(blobs, items, _model)  # noqa: E731
    for chunk in _start(settings, keys):
        _run(settings, chunk, score, blobs)
    assert _rows(blobs.objects[LAYOUT.results_key])[1]["error"] == "no such image"
    blobs.objects["images/late.jpg"] = b"JPEG"
    rerun = _start(settings, keys)  # the same manifest uploaded again
    assert [c.chunk for c in rerun] == [0]
    for chunk in rerun:
        _run(settings, chunk, score, blobs, owner="message-2")
    assert [r["verdict"] for r in _rows(blobs.objects[LAYOUT.results_key])] == ["benign"] * 2


# -- the worker's retries -----------------------------------------------------------------------


class _Down:
    def score_objects(self, bucket: str, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        raise RuntimeError("endpoint unavailable")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_failed_chunk_comes_back_in_minutes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker lowers a failed message's visibility: back in 60 s, then 120 s, not after
    the queue's 5,400 s (which is for workers that die without answering)."""
    now = {"ms": moto.sqs.models.unix_time_millis()}
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda dt=None: now["ms"])
    monkeypatch.setattr(batch_worker_fn, "endpoint_client", lambda _settings: _Down())
    (chunk,) = _start(settings, ["images/a.jpg"])
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="chunks", Attributes={"VisibilityTimeout": "5400"})
        url = queue["QueueUrl"]
        worker = settings.model_copy(update={"batch_queue_url": url, "aws_region": REGION})
        sqs.send_message(QueueUrl=url, MessageBody=chunk.to_json())

        def deliver() -> list[dict[str, Any]]:
            (got,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
            record = {
                "messageId": got["MessageId"],
                "receiptHandle": got["ReceiptHandle"],
                "body": got["Body"],
                "attributes": got["Attributes"],
            }
            return batch_worker_fn.process({"Records": [record]}, worker)["batchItemFailures"]

        def visible_after(seconds: int) -> bool:
            now["ms"] += seconds * 1000
            name = "ApproximateNumberOfMessages"  # visible ones: asking receives nothing
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])
            return attributes["Attributes"][name] == "1"

        for wait_s in (60, 120):
            assert len(deliver()) == 1
            assert not visible_after(wait_s - 1)
            assert visible_after(2)
        assert [batch_worker_fn.retry_delay_s(n) for n in range(1, 6)] == [60, 120, 240, 300, 300]
