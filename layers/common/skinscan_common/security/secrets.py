"""The master secret: from settings, Secrets Manager (AWS) or a local file (embedded)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from functools import lru_cache

from skinscan_common.config import Settings

_lock = threading.Lock()


@lru_cache(maxsize=8)
def _from_secrets_manager(arn: str, region: str) -> bytes:
    import boto3

    client = boto3.client("secretsmanager", region_name=region)
    value = client.get_secret_value(SecretId=arn)
    secret = value.get("SecretString") or value["SecretBinary"]
    if isinstance(secret, str) and secret.lstrip().startswith("{"):
        secret = json.loads(secret)["key"]  # {"key": ...} as well as the bare key
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _from_local_file(settings: Settings) -> bytes:
    path = settings.data_dir / "secret.key"
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_bytes().strip()


def master_secret(settings: Settings) -> bytes:
    """``jwt_secret`` if set, else the Secrets Manager secret, else ``<data_dir>/secret.key``."""
    if settings.jwt_secret is not None and settings.jwt_secret.get_secret_value():
        return settings.jwt_secret.get_secret_value().encode()
    if settings.jwt_secret_arn:
        return _from_secrets_manager(settings.jwt_secret_arn, settings.aws_region)
    return _from_local_file(settings)


def jwt_key(settings: Settings) -> bytes:
    """The HS256 key of access tokens: the master secret itself (shared with the authorizer)."""
    return master_secret(settings)


def signing_key(settings: Settings, purpose: str) -> bytes:
    """A key for one purpose (``jwt``, ``local-objects``...) derived from the master secret."""
    return hmac.new(master_secret(settings), purpose.encode(), hashlib.sha256).digest()
