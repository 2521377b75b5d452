"""The local-folder object store: keys, signed URLs, signed upload forms."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from skinscan_common.s3events import etag_of
from skinscan_common.storage import (
    InvalidKeyError,
    LocalObjectStore,
    ObjectNotFoundError,
    SignatureError,
    validate_key,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", secret=b"s" * 32, base_url="http://h:1")


@pytest.mark.parametrize(
    "key", ["", "/abs", "../x", "a/../b", "a//b", "a/./b", "a\\b", "a/b/..", "sp ace", "a/"]
)
def test_bad_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)


def test_put_get_delete(store: LocalObjectStore) -> None:
    store.put("users/u/predictions/p/image.jpg", b"jpeg", "image/jpeg")
    assert store.exists("users/u/predictions/p/image.jpg")
    assert store.get("users/u/predictions/p/image.jpg") == b"jpeg"
    assert store.content_type("users/u/predictions/p/image.jpg") == "image/jpeg"
    assert store.etag("users/u/predictions/p/image.jpg") == etag_of(b"jpeg")
    store.delete("users/u/predictions/p/image.jpg")
    assert store.etag("users/u/predictions/p/image.jpg") is None
    assert not store.exists("users/u/predictions/p/image.jpg")
    store.delete("users/u/predictions/p/image.jpg")  # idempotent
    with pytest.raises(ObjectNotFoundError):
        store.get("users/u/predictions/p/image.jpg")


def test_delete_prefix_is_exact(store: LocalObjectStore) -> None:
    store.put("users/1/a.png", b"1")
    store.put("users/1/x/b.png", b"2")
    store.put("users/10/c.png", b"3")
    assert store.delete_prefix("users/1/") == 2
    assert store.exists("users/10/c.png")
    with pytest.raises(InvalidKeyError):
        store.delete_prefix("users/1")


def test_signed_url(store: LocalObjectStore) -> None:
    url = store.url("users/u/a.png", expires=60)
    assert url.startswith("http://h:1/local-objects/users/u/a.png?")
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    store.verify_url("users/u/a.png", int(query["expires"]), query["sig"])
    with pytest.raises(SignatureError):
        store.verify_url("users/u/b.png", int(query["expires"]), query["sig"])
    with pytest.raises(SignatureError):
        store.verify_url("users/u/a.png", int(query["expires"]) + 1, query["sig"])
    with pytest.raises(SignatureError, match="expired"):
        store.verify_url("users/u/a.png", int(time.time()) - 1, query["sig"])


def test_presigned_post(store: LocalObjectStore) -> None:
    post = store.presign_post("guests/p/image.jpg", ["image/jpeg", "image/png"], 100)
    assert post.url == "http://h:1/local-uploads"
    assert store.verify_post(post.fields, "image/png", 100) == "guests/p/image.jpg"
    with pytest.raises(SignatureError):
        store.verify_post(post.fields, "text/html", 10)
    with pytest.raises(SignatureError):
        store.verify_post(post.fields, "image/png", 101)
    with pytest.raises(SignatureError):
        store.verify_post({**post.fields, "key": "users/x/evil.jpg"}, "image/png", 1)
    with pytest.raises(SignatureError):
        store.verify_post({**post.fields, "signature": "x"}, "image/png", 1)
