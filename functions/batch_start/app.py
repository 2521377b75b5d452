"""Lambda ``batch_start``: ``batch/{job}/manifest.csv`` uploaded -> a job and its chunk messages.

The manifest lists one object key per line. The job row and one row per image are written
first, then one SQS message per chunk of ``SKINSCAN_BATCH_CHUNK_SIZE`` images that still has
something to score: uploading the same manifest again re-runs the job and skips what is scored.
A line that can't name an object (not CSV, too long) or that names a user's photo or result
(``uploads/``, ``results/``) is a rejected row with the reason, not a failed job.
A job with nothing left to score is finished here. Failures raise: S3 retries the invocation
twice, then the event goes to the batch-start dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine, session_scope
from skinscan_common.deps import object_store
from skinscan_common.observability import logger
from skinscan_common.queues import SqsChunkQueue
from skinscan_common.s3events import parse_s3_event
from skinscan_common.services import batch


def process(event: dict[str, Any], settings: Settings, queue: Any = None) -> dict[str, Any]:
    """Start (or re-run) the job of every manifest in ``event``; ``queue.send(messages)``."""
    queue = queue or SqsChunkQueue(settings.batch_queue_url, region=settings.aws_region)
    store = object_store(settings)
    db = get_engine(settings.database_url)
    jobs: dict[str, int] = {}
    for obj in parse_s3_event(event):
        job_id = batch.job_of_manifest(obj.key)
        manifest = batch.parse_manifest(store.get(obj.key))
        with session_scope(db) as session:
            chunks = batch.start_job(
                session,
                job_id,
                obj.key,
                manifest.keys,
                settings.batch_chunk_size,
                refused=manifest.refused,
            )
        queue.send(chunks)
        if not chunks:
            batch.finalize(db, job_id, store, batch.JobLayout.for_bucket(job_id))
        jobs[job_id] = len(chunks)
        logger.info(
            "batch job started",
            extra={
                "job_id": job_id,
                "images": len(manifest.keys),
                "bad_lines": len(manifest.refused),
                "chunks_queued": len(chunks),
            },
        )
    return {"jobs": jobs}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event, get_settings())
