"""Objects in S3 (boto3), with presigned GET URLs and presigned POST uploads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from skinscan_common.errors import StorageUnavailableError
from skinscan_common.storage.base import (
    ObjectNotFoundError,
    ObjectStore,
    PresignedPost,
    validate_key,
    validate_prefix,
)

# S3's answers that mean "busy or failing, try again shortly" (any 5xx is taken so too).
# RequestTimeout is a 400: the connection idled mid-request.
_BUSY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)


def _busy(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _BUSY_CODES or (isinstance(status, int) and status >= 500)


@contextmanager
def _answered() -> Iterator[None]:
    """S3 unreachable, timed out or busy -> :class:`StorageUnavailableError` (503, retry).

    botocore's own errors would answer 500 (errors.py knows no botocore); any other S3 answer
    (403, NoSuchBucket: a misconfiguration, not an outage) is raised as it is.
    """
    try:
        yield
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
        raise StorageUnavailableError() from exc
    except ClientError as exc:
        if _busy(exc):
            raise StorageUnavailableError() from exc
        raise


#: How long an S3 call may wait to connect, and for each read; how many tries it gets.
S3_CONNECT_TIMEOUT_S = 3.0
S3_READ_TIMEOUT_S = 8.0
S3_ATTEMPTS = 2


class S3ObjectStore(ObjectStore):
    """One S3 bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any | None = None,
    ) -> None:
        self.bucket = bucket
        # On AWS, URLs name the bucket's own region (bucket.s3.<region>.amazonaws.com): the
        # global name can answer a new bucket with a redirect that a browser's CORS upload does
        # not follow. A custom endpoint (moto, MinIO) keeps path-style addressing.
        addressing = "path" if endpoint_url else "virtual"
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": addressing},
                # Bounded, like the model endpoint's client: an S3 that hangs is answered with a
                # 503 to retry well inside a function's timeout (API Gateway gives up at 30 s),
                # not after botocore's defaults (60 s per read, 5 tries).
                connect_timeout=S3_CONNECT_TIMEOUT_S,
                read_timeout=S3_READ_TIMEOUT_S,
                retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
            ),
        )

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with _answered():
            self.client.put_object(
                Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type
            )

    def _head(self, key: str) -> dict[str, Any] | None:
        with _answered():
            try:
                return self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    def get(self, key: str) -> bytes:
        with _answered():
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    raise ObjectNotFoundError(key) from exc
                raise
            return obj["Body"].read()

    def content_type(self, key: str) -> str:
        head = self._head(key)
        if head is None:
            raise ObjectNotFoundError(key)
        return str(head.get("ContentType", "application/octet-stream"))

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def etag(self, key: str) -> str | None:
        head = self._head(key)
        return None if head is None else str(head.get("ETag", "")).strip('"') or None

    def delete(self, key: str) -> None:
        with _answered():
            self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        with _answered():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                for i in range(0, len(keys), 1000):
                    self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys[i : i + 1000], "Quiet": True}
                    )
                count += len(keys)
        return count

    def url(self, key: str, expires: int = 300) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": validate_key(key)},
            ExpiresIn=int(expires),
        )

    def presign_post(
        self,
        key: str,
        content_types: Sequence[str],
        max_bytes: int,
        expires: int = 300,
    ) -> PresignedPost:
        validate_key(key)
        if not content_types:
            raise ValueError("an upload form needs a content type")
        # Exactly one type: a policy cannot allow two (its conditions all apply) and a prefix
        # such as "image/" lets image/svg+xml through, which a browser runs when the photo's URL
        # is opened. Of several, the form takes the first; the content is sniffed when scored,
        # so a PNG sent with a JPEG form is still read (and shown) as the PNG it is.
        content_type = content_types[0]
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                ["content-length-range", 1, int(max_bytes)],
                {"Content-Type": content_type},
            ],
            ExpiresIn=int(expires),
        )
        return PresignedPost(
            url=post["url"],
            fields=dict(post["fields"]),
            key=key,
            expires_in=int(expires),
            content_types=(content_type,),
        )
