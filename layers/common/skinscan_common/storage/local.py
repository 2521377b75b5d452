"""Objects in a local folder, with HMAC-signed expiring URLs served by the local stack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlencode

from skinscan_common.s3events import etag_of
from skinscan_common.storage.base import (
    InvalidKeyError,
    ObjectNotFoundError,
    ObjectStore,
    PresignedPost,
    validate_key,
    validate_prefix,
)

OBJECTS_ROUTE = "/local-objects"
UPLOAD_ROUTE = "/local-uploads"
_META_SUFFIX = ".meta.json"


class SignatureError(PermissionError):
    """A signed local URL or upload policy that is forged or expired."""


class LocalObjectStore(ObjectStore):
    """A folder as object store (the embedded local default)."""

    def __init__(self, root: Path, secret: bytes, base_url: str, bucket: str = "local") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.bucket = bucket

    def path(self, key: str) -> Path:
        """The file behind ``key``, guaranteed inside the root."""
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidKeyError(f"invalid object key: {key!r}")
        if path.name.endswith(_META_SUFFIX):
            raise InvalidKeyError("reserved object key suffix")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        meta = path.with_name(path.name + _META_SUFFIX)
        meta.write_text(json.dumps({"content_type": content_type}))

    def get(self, key: str) -> bytes:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return path.read_bytes()

    def content_type(self, key: str) -> str:
        meta = self.path(key).with_name(self.path(key).name + _META_SUFFIX)
        try:
            return str(json.loads(meta.read_text())["content_type"])
        except (OSError, ValueError, KeyError):
            return "application/octet-stream"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def etag(self, key: str) -> str | None:
        path = self.path(key)
        return etag_of(path.read_bytes()) if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + _META_SUFFIX).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        folder = self.path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(
            1 for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_META_SUFFIX)
        )
        shutil.rmtree(folder)
        return count

    # Signed URLs -----------------------------------------------------------------------------

    def _sign(self, message: str) -> str:
        digest = hmac.new(self.secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(self, key: str, expires: int = 300) -> str:
        validate_key(key)
        exp = int(time.time()) + int(expires)
        query = urlencode({"expires": exp, "sig": self._sign(f"GET\n{key}\n{exp}")})
        return f"{self.base_url}{OBJECTS_ROUTE}/{quote(key)}?{query}"

    def verify_url(self, key: str, expires: int, sig: str) -> None:
        """Raise :class:`SignatureError` unless ``sig`` signs ``key`` until ``expires``."""
        validate_key(key)
        if expires < time.time():
            raise SignatureError("link expired")
        if not hmac.compare_digest(self._sign(f"GET\n{key}\n{expires}"), sig):
            raise SignatureError("bad signature")

    def presign_post(
        self,
        key: str,
        content_types: Sequence[str],
        max_bytes: int,
        expires: int = 300,
    ) -> PresignedPost:
        validate_key(key)
        policy = {
            "key": key,
            "content_types": list(content_types),
            "max_bytes": int(max_bytes),
            "expires": int(time.time()) + int(expires),
        }
        encoded = base64.urlsafe_b64encode(json.dumps(policy).encode()).decode()
        fields = {"key": key, "policy": encoded, "signature": self._sign(f"POST\n{encoded}")}
        return PresignedPost(
            url=f"{self.base_url}{UPLOAD_ROUTE}", fields=fields, key=key, expires_in=int(expires)
        )

    def verify_post(self, fields: dict[str, str], content_type: str, size: int) -> str:
        """Check an upload form against its signed policy; returns the key to write."""
        encoded = fields.get("policy", "")
        if not hmac.compare_digest(self._sign(f"POST\n{encoded}"), fields.get("signature", "")):
            raise SignatureError("bad signature")
        try:
            policy = json.loads(base64.urlsafe_b64decode(encoded.encode()))
        except ValueError as exc:
            raise SignatureError("bad policy") from exc
        if policy["expires"] < time.time():
            raise SignatureError("upload form expired")
        if fields.get("key") != policy["key"]:
            raise SignatureError("key does not match the policy")
        if content_type not in policy["content_types"]:
            raise SignatureError(f"content type {content_type!r} not allowed")
        if size > policy["max_bytes"]:
            raise SignatureError(f"object larger than {policy['max_bytes']} bytes")
        return validate_key(policy["key"])
