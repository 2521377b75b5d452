"""Objects in S3 (boto3), with presigned GET URLs and presigned POST uploads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from skinscan_common.storage.base import (
    ObjectNotFoundError,
    ObjectStore,
    PresignedPost,
    validate_key,
    validate_prefix,
)


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
            config=Config(signature_version="s3v4", s3={"addressing_style": addressing}),
        )

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def get(self, key: str) -> bytes:
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
        self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
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
        types = list(content_types)
        conditions: list[Any] = [["content-length-range", 1, int(max_bytes)]]
        fields: dict[str, str] = {}
        if len(types) == 1:
            fields["Content-Type"] = types[0]
            conditions.append({"Content-Type": types[0]})
        else:
            # S3 policies cannot list alternatives; allow the common prefix, checked later.
            conditions.append(["starts-with", "$Content-Type", _common_prefix(types)])
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields=fields or None,
            Conditions=conditions,
            ExpiresIn=int(expires),
        )
        return PresignedPost(
            url=post["url"], fields=dict(post["fields"]), key=key, expires_in=int(expires)
        )


def _common_prefix(values: list[str]) -> str:
    if not values:
        return ""
    first, last = min(values), max(values)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]
