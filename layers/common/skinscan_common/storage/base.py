"""The object store interface shared by the S3 and local-folder backends."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

_KEY_CHARS = re.compile(r"^[A-Za-z0-9._\-/=+]+$")


class InvalidKeyError(ValueError):
    """An object key that could escape its prefix or is not plain."""


class ObjectNotFoundError(KeyError):
    """No object under that key."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key; raise :class:`InvalidKeyError` otherwise."""
    if not key or len(key) > 1024:
        raise InvalidKeyError("object key must be 1..1024 characters")
    if key.startswith("/") or "\\" in key or not _KEY_CHARS.match(key):
        raise InvalidKeyError(f"invalid object key: {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(f"invalid object key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix is a key ending in ``/`` (so ``users/1`` never matches ``users/10``)."""
    if not prefix.endswith("/"):
        raise InvalidKeyError("prefix must end with '/'")
    validate_key(prefix.rstrip("/"))
    return prefix


@dataclass(frozen=True)
class PresignedPost:
    """Where and how a browser uploads one object: POST ``fields`` + ``file`` to ``url``.

    ``content_types``: the types the form takes, where the backend took fewer than it was asked
    for (an S3 form takes one); empty when it takes them all.
    """

    url: str
    fields: dict[str, str] = field(default_factory=dict)
    key: str = ""
    expires_in: int = 0
    content_types: tuple[str, ...] = ()


class ObjectStore(ABC):
    """Put, get and delete objects, and hand out short-lived URLs."""

    bucket: str

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key`` (overwrites)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFoundError` when missing."""

    @abstractmethod
    def content_type(self, key: str) -> str:
        """The stored content type of ``key``."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abstractmethod
    def etag(self, key: str) -> str | None:
        """The ETag of the bytes ``key`` holds now (unquoted), or None when it is missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; missing keys are not an error."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (must end in ``/``); returns how many."""

    @abstractmethod
    def url(self, key: str, expires: int = 300) -> str:
        """A GET URL for ``key`` valid for ``expires`` seconds."""

    @abstractmethod
    def presign_post(
        self,
        key: str,
        content_types: Sequence[str],
        max_bytes: int,
        expires: int = 300,
    ) -> PresignedPost:
        """A browser upload form for exactly ``key``, limited in type and size.

        Each type allowed is allowed exactly (never a prefix such as ``image/``); a backend that
        can allow only one takes the first and says so in ``PresignedPost.content_types``.
        """
