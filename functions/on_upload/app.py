"""Lambda ``on_upload``: S3 ``ObjectCreated`` on ``uploads/`` -> the endpoint scores the photo.

Invoked asynchronously by S3 (retried twice, then the event goes to the upload-events
dead-letter queue). Each record is scored at most once per (bucket, key, ETag); the endpoint
writes the heatmaps and completes the prediction row. A failure the model reports for the photo
itself marks the prediction failed and is not retried; any other failure marks it failed with
the reason and is raised, so the invocation is retried and then dead-lettered. All of it lives
in ``skinscan_common.services.upload_events``; the local stack calls :func:`process` too.
"""

from __future__ import annotations

import uuid
from typing import Any

from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine
from skinscan_common.deps import endpoint_client, object_store
from skinscan_common.observability import logger
from skinscan_common.s3events import parse_s3_event
from skinscan_common.services.upload_events import UploadContext, handle_upload


def process(event: dict[str, Any], settings: Settings, invocation_id: str) -> dict[str, Any]:
    """Handle every record; the first failure is raised after the others were tried."""
    context = UploadContext(
        db=get_engine(settings.database_url),
        endpoint=endpoint_client(settings),
        store=object_store(settings),
        max_bytes=settings.max_upload_bytes,
        claim_s=settings.upload_claim_s,
        invocation_id=invocation_id,
    )
    outcomes: dict[str, str] = {}
    failure: Exception | None = None
    for obj in parse_s3_event(event):
        try:
            outcomes[obj.key] = handle_upload(obj, context)
        except Exception as exc:
            outcomes[obj.key] = "error"
            failure = failure or exc
    if failure is not None:
        raise failure
    return {"outcomes": outcomes}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    return process(event, get_settings(), request_id)
