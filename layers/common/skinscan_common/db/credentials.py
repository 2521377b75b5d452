"""PostgreSQL credentials from an RDS-managed Secrets Manager secret, read when connecting.

RDS rotates the managed master password (every 7 days by default). The secret is therefore read
for new connections, cached for a few minutes, and read again at once when PostgreSQL refuses
the password, so a process that lives for weeks (the inference container, a warm Lambda)
reconnects after a rotation instead of failing every request until it is replaced.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from skinscan_common.cache import KeyedCache

# How long a secret read is reused; a rotation is noticed sooner, at the first refused password.
SECRET_TTL_S = 600.0
# SQLSTATEs of a refused login: invalid_password, invalid_authorization_specification.
_AUTH_FAILED = {"28P01", "28000"}


def _read_secret(secret_arn: str, region: str) -> tuple[str, str]:
    import boto3

    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_arn)
    data = json.loads(value["SecretString"])
    return str(data["username"]), str(data["password"])


class SecretCredentials:
    """``(username, password)`` of one secret, cached for ``ttl_s``; :meth:`forget` re-reads."""

    def __init__(
        self,
        secret_arn: str,
        region: str,
        ttl_s: float = SECRET_TTL_S,
        read: Callable[[str, str], tuple[str, str]] = _read_secret,
    ) -> None:
        self.secret_arn, self.region, self.ttl_s, self._read = secret_arn, region, ttl_s, read
        self._lock = threading.Lock()
        self._value: tuple[str, str] | None = None
        self._read_at = 0.0

    def get(self) -> tuple[str, str]:
        """The cached credentials, read again once they are older than ``ttl_s``."""
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self.ttl_s:
                self._value = self._read(self.secret_arn, self.region)
                self._read_at = time.monotonic()
            return self._value

    def forget(self) -> None:
        """Drop the cached value: the next :meth:`get` reads the secret."""
        with self._lock:
            self._value = None


_secrets: KeyedCache[SecretCredentials] = KeyedCache()


def credentials_for(secret_arn: str, region: str) -> SecretCredentials:
    """One cache per secret in the process, shared by every engine that uses it."""
    return _secrets.get(f"{region}|{secret_arn}", lambda: SecretCredentials(secret_arn, region))


def is_auth_failure(exc: BaseException) -> bool:
    """Whether pg8000 raised PostgreSQL's "password authentication failed" (or its kin)."""
    details = exc.args[0] if exc.args else None
    return isinstance(details, dict) and details.get("C") in _AUTH_FAILED


def connect_with(engine: Engine, credentials: SecretCredentials) -> None:
    """Give every new connection of ``engine`` the secret's current user and password."""

    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        cparams["user"], cparams["password"] = credentials.get()
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not is_auth_failure(exc):
                raise
        credentials.forget()  # rotated since it was read: read it again and try once more
        cparams["user"], cparams["password"] = credentials.get()
        return dialect.connect(*cargs, **cparams)

    event.listen(engine, "do_connect", _connect)
