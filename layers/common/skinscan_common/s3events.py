"""S3 ``ObjectCreated`` event notifications: reading them, and building them (local stack, tests).

The shape is the one S3 sends to Lambda (``Records[].s3.bucket.name``, ``.object.key``
URL-encoded with ``+`` for spaces, ``.object.eTag`` without quotes, ``.object.size``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus


class EventError(ValueError):
    """An event that is not an S3 notification we can read."""


@dataclass(frozen=True)
class S3Object:
    """One created object: where it is, which version of its bytes, how big."""

    bucket: str
    key: str
    etag: str
    size: int


def etag_of(data: bytes) -> str:
    """The ETag S3 gives a single-part upload (MD5 hex), as local uploads get it too."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_s3_event(event: dict[str, Any]) -> list[S3Object]:
    """The objects of an S3 event; :class:`EventError` when it has none or is malformed."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        raise EventError("not an S3 event: no Records")
    found = []
    for i, record in enumerate(records):
        try:
            s3 = record["s3"]
            obj = s3["object"]
            found.append(
                S3Object(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
                    size=int(obj.get("size") or 0),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EventError(f"record {i} is not an S3 object notification") from exc
        if not found[-1].etag:
            raise EventError(f"record {i} has no ETag")
    return found


def object_created_event(
    objects: list[S3Object], event_name: str = "ObjectCreated:Post", region: str = "eu-west-1"
) -> dict[str, Any]:
    """The notification S3 would send for ``objects``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now,
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "skinscan",
                    "bucket": {"name": o.bucket, "arn": f"arn:aws:s3:::{o.bucket}"},
                    "object": {
                        "key": quote_plus(o.key, safe="/"),
                        "size": o.size,
                        "eTag": o.etag,
                        "sequencer": "0",
                    },
                },
            }
            for o in objects
        ]
    }
