"""Object storage: one interface, an S3 backend and a local-folder backend."""

from __future__ import annotations

from skinscan_common.config import Settings
from skinscan_common.storage.base import (
    InvalidKeyError,
    ObjectNotFoundError,
    ObjectStore,
    PresignedPost,
    validate_key,
    validate_prefix,
)
from skinscan_common.storage.keys import (
    GUEST,
    heatmap_key,
    image_key,
    overlay_key,
    owner_segment,
    results_prefix,
    user_prefixes,
)
from skinscan_common.storage.local import LocalObjectStore, SignatureError

__all__ = [
    "GUEST",
    "InvalidKeyError",
    "LocalObjectStore",
    "ObjectNotFoundError",
    "ObjectStore",
    "PresignedPost",
    "SignatureError",
    "build_object_store",
    "heatmap_key",
    "image_key",
    "overlay_key",
    "owner_segment",
    "results_prefix",
    "user_prefixes",
    "validate_key",
    "validate_prefix",
]


def build_object_store(settings: Settings) -> ObjectStore:
    """The backend ``settings.storage_backend`` names."""
    if settings.storage_backend == "s3":
        from skinscan_common.storage.s3 import S3ObjectStore

        return S3ObjectStore(
            settings.bucket, endpoint_url=settings.s3_endpoint_url, region=settings.aws_region
        )
    from skinscan_common.security.secrets import signing_key

    return LocalObjectStore(
        settings.objects_dir,
        secret=signing_key(settings, purpose="local-objects"),
        base_url=settings.public_base_url,
        bucket=settings.bucket,
    )
