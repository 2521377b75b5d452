"""The local stand-in for S3 event notifications: a local upload runs ``functions/on_upload``.

After the local stack stores an upload under ``uploads/`` (its signed upload form), the same
``ObjectCreated`` event S3 would send goes to the same handler code, in a background thread as
S3's asynchronous invocation would, with Lambda's two retries.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI

from skinscan_common.config import Settings
from skinscan_common.deps import object_store
from skinscan_common.observability import logger
from skinscan_common.s3events import S3Object, etag_of, object_created_event
from skinscan_common.services.uploads import UPLOAD_PREFIX

ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries


def invoke_on_upload(event: dict[str, Any], settings: Settings, retry_delay_s: float = 1.0) -> None:
    """Run ``functions.on_upload`` on ``event`` like Lambda would (same request id on retries)."""
    from functions.on_upload.app import process

    request_id = str(uuid.uuid4())
    for attempt in range(1, ATTEMPTS + 1):
        try:
            process(event, settings, request_id)
            return
        except Exception:
            logger.exception("on_upload failed", extra={"attempt": attempt})
            if attempt < ATTEMPTS:
                time.sleep(retry_delay_s * attempt)


def dispatch_upload(app: FastAPI, key: str) -> None:
    """Upload listener of the local stack: ``uploads/`` keys go to ``on_upload``."""
    if not key.startswith(UPLOAD_PREFIX):
        return
    settings: Settings = app.state.settings
    data = object_store(settings).get(key)
    event = object_created_event(
        [S3Object(settings.bucket, key, etag_of(data), len(data))], region=settings.aws_region
    )
    threading.Thread(
        target=invoke_on_upload, args=(event, settings), name="on-upload", daemon=True
    ).start()
