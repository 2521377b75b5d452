"""Lambda ``batch_worker``: one SQS chunk message -> its images scored through the endpoint.

The endpoint gets ``SKINSCAN_BATCH_INVOKE_SIZE`` object keys per call, reads them from the
bucket, writes each heatmap and overlay to ``batch/{job}/heatmaps/`` and answers the results;
they are committed after each call. The chunk's results go to ``batch/{job}/chunks/``; the
worker that finishes the job's last chunk writes ``batch/{job}/results.csv``. A failed chunk is
reported in ``batchItemFailures`` (ReportBatchItemFailures), so SQS retries it and, after
``maxReceiveCount`` tries, dead-letters it; on that last try whatever fails fails only its own
images (marked failed), so the job still completes (a re-run scores them again). A second
delivery of a chunk that another worker is scoring leaves the images to it and succeeds.

A failed message comes back after 60, 120, 240 then 300 s (its visibility lowered with
``sqs:ChangeMessageVisibility``), not after the queue's 5400 s visibility timeout, which is
there for workers that die without answering.
"""

from __future__ import annotations

from typing import Any

from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine
from skinscan_common.deps import endpoint_client, object_store
from skinscan_common.observability import logger
from skinscan_common.services import batch

RETRY_FIRST_S = 60
RETRY_MOST_S = 300


def retry_delay_s(receives: int) -> int:
    """How long a failed chunk waits before its next try: doubling from 60 s, at most 300 s."""
    return min(RETRY_MOST_S, RETRY_FIRST_S * 2 ** max(0, min(receives, 10) - 1))


def _retry_sooner(sqs: Any, settings: Settings, record: dict[str, Any], receives: int) -> Any:
    """Lower a failed message's visibility so that SQS delivers it again in a few minutes;
    the SQS client (made on first use)."""
    handle = record.get("receiptHandle")
    if not handle or not settings.batch_queue_url:
        return sqs
    try:
        sqs = sqs or _sqs_client(settings)
        sqs.change_message_visibility(
            QueueUrl=settings.batch_queue_url,
            ReceiptHandle=handle,
            VisibilityTimeout=retry_delay_s(receives),
        )
    except Exception:  # the message then comes back after the queue's visibility timeout
        logger.exception("could not shorten a failed chunk's wait", extra={"receive": receives})
    return sqs


def _sqs_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    # Short: this runs after a chunk failed, maybe near the worker's timeout.
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
    return boto3.client("sqs", region_name=settings.aws_region, config=config)


def process(event: dict[str, Any], settings: Settings, sqs: Any = None) -> dict[str, Any]:
    """Run each record's chunk; failures are reported per message, never raised."""
    db = get_engine(settings.database_url)
    store = object_store(settings)
    endpoint = endpoint_client(settings)
    failures = []
    for record in event.get("Records") or []:
        message_id = record.get("messageId", "")
        try:
            message = batch.ChunkMessage.from_json(record.get("body") or "")
        except batch.BatchError:
            logger.exception("unreadable chunk message dropped", extra={"message_id": message_id})
            continue  # retrying cannot fix it; the log keeps it
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
        log = {"job_id": message.job_id, "chunk": message.chunk, "receive": receives}
        try:
            report = batch.run_chunk(
                db,
                message,
                score=lambda items: endpoint.score_objects(settings.bucket, items),
                out=store,
                layout=batch.JobLayout.for_bucket(message.job_id),
                invoke_size=settings.batch_invoke_size,
                last_try=receives >= settings.batch_max_receives,
                owner=message_id or None,  # a redelivery of this message takes its lease back
                lease_s=settings.batch_lease_s,
            )
        except Exception:
            logger.exception("chunk failed", extra=log)
            failures.append({"itemIdentifier": message_id})
            sqs = _retry_sooner(sqs, settings, record, receives)
            continue
        logger.info(
            "chunk scored",
            extra={
                **log,
                "scored": report.scored,
                "skipped": report.skipped,
                "in_flight": report.in_flight,
                "finished_job": report.finished_job,
            },
        )
    return {"batchItemFailures": failures}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process(event, get_settings())
