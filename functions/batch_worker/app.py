"""Lambda ``batch_worker``: one SQS chunk message -> its images scored through the endpoint.

The endpoint gets ``SKINSCAN_BATCH_INVOKE_SIZE`` object keys per call, reads them from the
bucket, writes each heatmap and overlay to ``batch/{job}/heatmaps/`` and answers the results;
they are committed after each call. The chunk's results go to ``batch/{job}/chunks/``; the
worker that finishes the job's last chunk writes ``batch/{job}/results.csv``. A failed chunk is
reported in ``batchItemFailures`` (ReportBatchItemFailures), so SQS retries it and, after
``maxReceiveCount`` tries, dead-letters it; on that last try its open images are marked failed
first, so the job still completes (a re-run scores them again). A second delivery of a chunk
that another worker is scoring leaves the images to it and succeeds.
"""

from __future__ import annotations

from typing import Any

from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine
from skinscan_common.deps import endpoint_client, object_store
from skinscan_common.observability import logger
from skinscan_common.services import batch


def process(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
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
