"""Batch jobs: manifests, chunks, re-runs (both databases), and the cloud job end to end.

The cloud test runs ``batch_start`` and ``batch_worker`` on a moto S3 and SQS over HTTP with
PostgreSQL, the endpoint answered by the real container app (see ``tests.cloud_fixtures``).
"""

from __future__ import annotations

import csv
import io
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from functions.batch_start import app as batch_start_fn
from functions.batch_worker import app as batch_worker_fn
from skinscan.commands.invoke import LambdaContext
from skinscan.commands.predict import COLUMNS
from skinscan_common.config import Settings, get_settings
from skinscan_common.db import BatchItem, BatchJob, get_engine, session_factory, session_scope
from skinscan_common.db.models import utcnow
from skinscan_common.services import batch
from tests.cloud_fixtures import (  # noqa: F401  (fixtures)
    Cloud,
    cloud_fixture,
    moto_url_fixture,
)
from tests.engine_fixtures import ham_fixture_paths, shared_ham_paths
from tests.support.aws import s3_event_for
from tests.support.batch_answers import done_answer


class DictBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        self.objects[key] = data


def _answer(item: dict[str, str]) -> dict[str, Any]:
    if "bad" in item["key"]:
        return {"key": item["key"], "status": "rejected", "error": "not an image"}
    return done_answer(item["key"])


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# -- manifests and messages ----------------------------------------------------------------------


def test_result_columns_are_those_of_predict_csv() -> None:
    assert batch.RESULT_COLUMNS == COLUMNS


def test_parse_manifest() -> None:
    data = b"\xef\xbb\xbfkey\nimages/a.jpg\n\n# a comment\nimages/b.jpg,extra\nimages/a.jpg\n"
    assert batch.parse_manifest(data) == batch.Manifest(["images/a.jpg", "images/b.jpg"])
    with pytest.raises(batch.BatchError, match="no object keys"):
        batch.parse_manifest(b"\n# nothing\n")
    with pytest.raises(batch.BatchError, match="UTF-8"):
        batch.parse_manifest(b"\xff\xfe\x00")


def test_job_of_manifest_and_messages() -> None:
    assert batch.job_of_manifest("batch/job-1/manifest.csv") == "job-1"
    assert batch.job_of_manifest("batch/2026/run.3/manifest.csv") == "2026/run.3"
    for key in (
        "batch/manifest.csv",
        "batch//manifest.csv",
        "batch/a b/manifest.csv",
        "uploads/x/manifest.csv",
        "batch/../manifest.csv",
    ):
        with pytest.raises(batch.BatchError):
            batch.job_of_manifest(key)
    message = batch.ChunkMessage("job-1", 3)
    assert batch.ChunkMessage.from_json(message.to_json()) == message
    for body in ("", "{}", '{"job_id": "x", "chunk": -1}', '{"job_id": "../x", "chunk": 1}'):
        with pytest.raises(batch.BatchError):
            batch.ChunkMessage.from_json(body)


# -- jobs on both databases ----------------------------------------------------------------------


def _recording(calls: list[str]) -> batch.Score:
    """An endpoint that answers every item and appends each key it was sent to ``calls``."""

    def score(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        calls.extend(item["key"] for item in items)
        return [_answer(item) for item in items]

    return score


def _run_all(
    settings: Settings, chunks: Sequence[batch.ChunkMessage], out: DictBlobs, calls: list[str]
) -> None:
    score = _recording(calls)
    layout = batch.JobLayout.for_bucket("job")
    for message in chunks:
        batch.run_chunk(
            get_engine(settings.database_url),
            message,
            score=score,
            out=out,
            layout=layout,
            invoke_size=2,
            last_try=False,
        )


def test_job_reruns_skip_what_is_scored(settings: Settings) -> None:
    db = get_engine(settings.database_url)
    keys = ["../escape.jpg"] + [f"images/{i}.jpg" for i in range(7)] + ["images/bad.jpg"]
    with session_scope(db) as session:
        chunks = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 4)
    assert [c.chunk for c in chunks] == [0, 1, 2]
    out, calls = DictBlobs(), []
    _run_all(settings, chunks[:2], out, calls)
    assert len(calls) == 7 and "batch/job/results.csv" not in out.objects
    with session_scope(db) as session:  # the same manifest again: only chunk 2 is left
        again = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 4)
    assert [c.chunk for c in again] == [2]
    _run_all(settings, again + chunks[:1], out, calls)  # plus a duplicate delivery of chunk 0
    assert sorted(calls) == sorted(k for k in keys if k != "../escape.jpg")
    rows = _rows(out.objects["batch/job/results.csv"])
    assert [r["image"] for r in rows] == keys
    assert rows[0]["verdict"] == "error" and "invalid object key" in rows[0]["error"]
    assert rows[8]["verdict"] == "error" and rows[8]["error"] == "not an image"
    assert _rows(out.objects["batch/job/chunks/000002.csv"])[0]["image"] == "images/bad.jpg"
    with session_scope(db) as session:
        job = session.get(BatchJob, "job")
        assert job is not None
        assert (job.status, job.total, job.done, job.failed) == ("done", 9, 7, 2)
        assert (job.chunks_total, job.chunks_done) == (3, 3)
        # A changed manifest keeps the results of the keys it still lists.
        changed = batch.start_job(
            session, "job", "batch/job/manifest.csv", [*keys[:4], "images/new.jpg"], 4
        )
    _run_all(settings, changed, out, calls)
    assert calls[-1:] == ["images/new.jpg"] and len(calls) == 9
    assert len(_rows(out.objects["batch/job/results.csv"])) == 5


def test_last_try_fails_the_items_and_a_rerun_scores_them(settings: Settings) -> None:
    db = get_engine(settings.database_url)
    keys = [f"images/{i}.jpg" for i in range(3)]
    with session_scope(db) as session:
        (chunk,) = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 4)
    out = DictBlobs()
    layout = batch.JobLayout.for_bucket("job")

    def down(_items: list[dict[str, str]]) -> list[dict[str, Any]]:
        raise RuntimeError("endpoint unavailable")

    for last_try in (False, True):
        with pytest.raises(RuntimeError):
            batch.run_chunk(
                db, chunk, score=down, out=out, layout=layout, invoke_size=2, last_try=last_try
            )
    rows = _rows(out.objects["batch/job/results.csv"])  # the job completed, with the errors
    assert all("endpoint unavailable" in r["error"] for r in rows)
    with session_scope(db) as session:
        assert {i.status for i in session.scalars(select(BatchItem))} == {"failed"}
        rerun = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 4)
    _run_all(settings, rerun, out, [])
    assert {r["verdict"] for r in _rows(out.objects["batch/job/results.csv"])} == {"benign"}


# -- two deliveries of one chunk ---------------------------------------------------------------


def _one_chunk_job(settings: Settings, keys: list[str]) -> batch.ChunkMessage:
    """Start job ``job`` with ``keys`` in a single chunk; its message."""
    with session_scope(get_engine(settings.database_url)) as session:
        (chunk,) = batch.start_job(session, "job", "batch/job/manifest.csv", keys, 64)
    return chunk


def _deliver(
    settings: Settings, message: batch.ChunkMessage, score: batch.Score, owner: str, **kw: Any
) -> batch.ChunkReport:
    return batch.run_chunk(
        get_engine(settings.database_url),
        message,
        score=score,
        out=kw.pop("out", DictBlobs()),
        layout=batch.JobLayout.for_bucket("job"),
        invoke_size=2,
        last_try=kw.pop("last_try", False),
        owner=owner,
        **kw,
    )


def test_a_chunk_delivered_twice_at_once_is_scored_once(settings: Settings) -> None:
    db = get_engine(settings.database_url)
    keys = [f"images/{i}.jpg" for i in range(5)]
    chunk = _one_chunk_job(settings, keys)
    calls: list[str] = []
    first_call, go_on = threading.Event(), threading.Event()

    def slow(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        calls.extend(item["key"] for item in items)
        first_call.set()
        assert go_on.wait(30)
        return [_answer(item) for item in items]

    first_out = DictBlobs()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_deliver, settings, chunk, slow, "message-1", out=first_out)
        assert first_call.wait(30)
        # The duplicate arrives while the first delivery waits for the endpoint.
        second_out = DictBlobs()
        never = lambda _items: pytest.fail("scored twice")  # noqa: E731
        second = _deliver(settings, chunk, never, "message-2", out=second_out)
        go_on.set()
        done = first.result(30)
    assert (second.scored, second.in_flight, second_out.objects) == (0, 5, {})
    assert (done.scored, done.finished_job) == (5, True)
    assert sorted(calls) == keys
    assert [r["verdict"] for r in _rows(first_out.objects["batch/job/results.csv"])] == [
        "benign"
    ] * 5
    with session_scope(db) as session:
        items = list(session.scalars(select(BatchItem)))
        assert {(i.status, i.attempts, i.owner, i.leased_until) for i in items} == {
            ("done", 1, None, None)
        }


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_deliveries_share_nothing(settings: Settings) -> None:
    """Several deliveries racing for one chunk: every image reaches the endpoint once."""
    keys = [f"images/{i}.jpg" for i in range(40)]
    chunk = _one_chunk_job(settings, keys)
    calls: list[str] = []
    start = threading.Barrier(4)

    def deliver(n: int) -> batch.ChunkReport:
        start.wait(30)
        return _deliver(settings, chunk, _recording(calls), f"message-{n}")

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(deliver, range(4)))
    assert sorted(calls) == sorted(keys)
    assert sum(r.scored for r in reports) == 40
    assert sum(r.finished_job for r in reports) == 1


def test_leases_released_taken_back_and_expired(settings: Settings) -> None:
    db = get_engine(settings.database_url)
    chunk = _one_chunk_job(settings, [f"images/{i}.jpg" for i in range(3)])
    calls: list[str] = []
    score = _recording(calls)

    def down(_items: list[dict[str, str]]) -> list[dict[str, Any]]:
        raise RuntimeError("endpoint unavailable")

    # An endpoint failure gives the leases back: another message may score at once.
    with pytest.raises(RuntimeError):
        _deliver(settings, chunk, down, "message-1")
    with session_scope(db) as session:
        assert {i.owner for i in session.scalars(select(BatchItem))} == {None}

    # A worker that died holding a live lease: others leave the images to it ...
    later = utcnow() + timedelta(minutes=10)
    with session_scope(db) as session:
        session.execute(update(BatchItem).values(owner="message-1", leased_until=later))
    assert _deliver(settings, chunk, score, "message-2").in_flight == 3
    # ... but its own message, delivered again, takes the images back,
    report = _deliver(settings, chunk, score, "message-1", out=DictBlobs())
    assert (report.scored, report.in_flight) == (3, 0) and len(calls) == 3

    # and an expired lease is anybody's.
    with session_scope(db) as session:
        session.execute(
            update(BatchItem)
            .where(BatchItem.position == 0)
            .values(status="pending", owner="gone", leased_until=utcnow() - timedelta(seconds=1))
        )
    assert _deliver(settings, chunk, score, "message-3").scored == 1


def test_answers_land_on_their_keys_after_a_manifest_change(settings: Settings) -> None:
    """A manifest changed while a chunk is scored renumbers rows; answers follow their keys."""
    db = get_engine(settings.database_url)
    chunk = _one_chunk_job(settings, ["images/a.jpg", "images/b.jpg"])

    def reorder_then_answer(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        with session_scope(db) as session:  # b moves to position 0, a is dropped
            batch.start_job(session, "job", "batch/job/manifest.csv", ["images/b.jpg"], 8)
        return [{**_answer(item), "top_class": item["key"]} for item in items]

    _deliver(settings, chunk, reorder_then_answer, "message-1")
    with session_scope(db) as session:
        (item,) = session.scalars(select(BatchItem))
        assert (item.key, item.status, item.top_class) == ("images/b.jpg", "done", "images/b.jpg")


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_starts_of_one_job_run_one_after_the_other(settings: Settings) -> None:
    """A manifest uploaded twice at once (two ``batch_start`` runs): the second waits."""
    db = get_engine(settings.database_url)
    with session_scope(db) as session:
        batch.start_job(session, "job", "batch/job/manifest.csv", ["images/0.jpg"], 8)
    first = session_factory(db)()
    batch.start_job(first, "job", "batch/job/manifest.csv", ["images/1.jpg", "images/2.jpg"], 8)

    def second() -> list[batch.ChunkMessage]:
        with session_scope(db) as session:
            keys = ["images/2.jpg", "images/3.jpg", "images/4.jpg"]
            return batch.start_job(session, "job", "batch/job/manifest.csv", keys, 8)

    with ThreadPoolExecutor(1) as pool:
        try:
            waiting = pool.submit(second)
            time.sleep(0.5)  # the second start is now blocked on the job row
            assert not waiting.done()
            first.commit()
        finally:
            first.close()  # a failed test must not leave the row locked
        assert [c.chunk for c in waiting.result(30)] == [0]
    with session_scope(db) as session:
        keys = session.scalars(select(BatchItem.key).order_by(BatchItem.position))
        assert list(keys) == ["images/2.jpg", "images/3.jpg", "images/4.jpg"]


# -- the cloud job ---------------------------------------------------------------------------------


def _images(count: int) -> list[tuple[str, bytes]]:
    """Real HAM10000 photos: distinct shared ones, else the fixtures under distinct names."""
    shared = shared_ham_paths(count)
    if len(shared) >= count:
        return [(f"images/{p.name}", p.read_bytes()) for p in shared]
    fixtures = ham_fixture_paths()
    return [
        (
            f"images/{i:03d}-{fixtures[i % len(fixtures)].name}",
            fixtures[i % len(fixtures)].read_bytes(),
        )
        for i in range(count)
    ]


def _receive_all(cloud: Cloud) -> list[dict[str, Any]]:
    sqs, messages = cloud.sqs(), []
    while True:
        got = sqs.receive_message(
            QueueUrl=cloud.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        messages += got


def _sqs_event(message: dict[str, Any]) -> dict[str, Any]:
    """The event Lambda's SQS poller sends for one message."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:chunks",
                "awsRegion": "eu-west-1",
            }
        ]
    }


def _work(cloud: Cloud, message: dict[str, Any], delete: bool = True) -> list[dict[str, str]]:
    """Run the worker on one message; delete it unless reported failed (as Lambda does)."""
    context = LambdaContext("skinscan-batch-worker")
    failures = batch_worker_fn.handler(_sqs_event(message), context)["batchItemFailures"]
    if delete and not failures:
        cloud.sqs().delete_message(QueueUrl=cloud.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_cloud_batch_job_of_real_images_interrupted_and_resumed(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKINSCAN_BATCH_CHUNK_SIZE", "8")
    monkeypatch.setenv("SKINSCAN_BATCH_INVOKE_SIZE", "4")
    get_settings.cache_clear()
    s3 = cloud.s3()
    images = _images(56)
    for key, data in images:
        s3.put_object(Bucket=cloud.bucket, Key=key, Body=data, ContentType="image/jpeg")
    s3.put_object(Bucket=cloud.bucket, Key="images/notes.jpg", Body=b"not a photo")
    keys = [key for key, _ in images] + ["images/notes.jpg", "images/missing.jpg"]
    manifest = ("key\n" + "\n".join(keys) + "\n").encode()
    s3.put_object(Bucket=cloud.bucket, Key="batch/job-1/manifest.csv", Body=manifest)
    start_event = s3_event_for(cloud.moto, cloud.bucket, "batch/job-1/manifest.csv")
    context = LambdaContext("skinscan-batch-start")

    assert batch_start_fn.handler(start_event, context) == {"jobs": {"job-1": 8}}
    messages = sorted(
        _receive_all(cloud), key=lambda m: batch.ChunkMessage.from_json(m["Body"]).chunk
    )
    assert len(messages) == 8
    for message in messages[:3]:
        assert _work(cloud, message) == []
    # The endpoint fails during chunk 3's second call; then the whole fleet stops.
    calls = len(cloud.shim.calls)
    cloud.shim.before = lambda _body: 500 if len(cloud.shim.calls) > calls + 1 else None
    assert _work(cloud, messages[3]) == [{"itemIdentifier": messages[3]["MessageId"]}]
    cloud.shim.before = None
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        job = session.get(BatchJob, "job-1")
        assert job is not None and (job.status, job.done, job.chunks_done) == ("running", 28, 3)
    cloud.sqs().purge_queue(QueueUrl=cloud.queue_url)  # what was in flight is gone

    # Re-run the job: the same manifest uploaded again.
    s3.put_object(Bucket=cloud.bucket, Key="batch/job-1/manifest.csv", Body=manifest)
    assert batch_start_fn.handler(start_event, context) == {"jobs": {"job-1": 5}}
    resumed = _receive_all(cloud)
    for message in resumed:
        assert _work(cloud, message) == []
    assert _work(cloud, messages[0], delete=False) == []  # a late duplicate of chunk 0

    served = [item["key"] for body in cloud.shim.bodies(served=True) for item in body["items"]]
    assert sorted(served) == sorted(keys)  # every image went to the endpoint exactly once
    rows = _rows(s3.get_object(Bucket=cloud.bucket, Key="batch/job-1/results.csv")["Body"].read())
    assert tuple(rows[0]) == COLUMNS and [r["image"] for r in rows] == keys
    assert {r["verdict"] for r in rows[:56]} <= {"benign", "malignant", "unknown"}
    assert rows[56]["verdict"] == "error" and "not an image" in rows[56]["error"]
    assert rows[57]["verdict"] == "error" and rows[57]["error"] == "no such image"
    first = keys[0]
    for suffix in ("heatmap", "overlay"):
        png = s3.get_object(Bucket=cloud.bucket, Key=f"batch/job-1/heatmaps/{first}.{suffix}.png")
        assert png["Body"].read().startswith(b"\x89PNG")
    assert s3.head_object(Bucket=cloud.bucket, Key="batch/job-1/chunks/000007.csv")
    with session_factory(get_engine(cloud.settings.database_url))() as session:
        job = session.get(BatchJob, "job-1")
        assert job is not None
        assert (job.status, job.total, job.done, job.failed) == ("done", 58, 56, 2)
        assert job.chunks_done == job.chunks_total == 8 and job.completed_at is not None
        attempts = session.scalars(select(BatchItem.attempts).where(BatchItem.status == "done"))
        assert set(attempts) == {1}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_bad_manifest_fails_loudly(cloud: Cloud) -> None:
    cloud.s3().put_object(Bucket=cloud.bucket, Key="batch/empty/manifest.csv", Body=b"\n")
    event = s3_event_for(cloud.moto, cloud.bucket, "batch/empty/manifest.csv")
    with pytest.raises(batch.BatchError, match="no object keys"):
        batch_start_fn.handler(event, LambdaContext("skinscan-batch-start"))
    unreadable = {"Records": [{"messageId": "m1", "body": "not json", "attributes": {}}]}
    context = LambdaContext("skinscan-batch-worker")
    assert batch_worker_fn.handler(unreadable, context) == {"batchItemFailures": []}
    orphan = {
        "Records": [
            {
                "messageId": "m2",
                "body": batch.ChunkMessage(f"gone-{uuid.uuid4().hex[:6]}", 0).to_json(),
                "attributes": {},
            }
        ]
    }
    assert batch_worker_fn.handler(orphan, context) == {
        "batchItemFailures": [{"itemIdentifier": "m2"}]
    }


def test_local_state_path_is_not_a_bucket_key(tmp_path: Path) -> None:
    """A local job's layout may use absolute paths (skinscan batch)."""
    layout = batch.JobLayout(str(tmp_path / "results.csv"), f"{tmp_path}/.s/chunks/", None)
    assert layout.chunk_key(12) == f"{tmp_path}/.s/chunks/000012.csv"
