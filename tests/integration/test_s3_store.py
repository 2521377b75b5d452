"""The S3 backend against moto: objects, presigned GET URLs and presigned POST uploads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx2
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from skinscan_common.config import Settings
from skinscan_common.s3events import etag_of
from skinscan_common.storage import ObjectNotFoundError, build_object_store
from skinscan_common.storage.s3 import S3ObjectStore
from tests.support.net import free_port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real HTTP S3 (moto server), so presigned URLs can be fetched over HTTP."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_store(moto_endpoint: str, request: pytest.FixtureRequest) -> S3ObjectStore:
    bucket = f"skinscan-test-{abs(hash(request.node.nodeid)) % 10**8}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return S3ObjectStore(bucket, endpoint_url=moto_endpoint, region="eu-west-1")


def test_put_get_delete(s3_store: S3ObjectStore) -> None:
    s3_store.put("users/u/p/image.jpg", b"jpeg", "image/jpeg")
    assert s3_store.exists("users/u/p/image.jpg")
    assert s3_store.get("users/u/p/image.jpg") == b"jpeg"
    assert s3_store.content_type("users/u/p/image.jpg") == "image/jpeg"
    assert s3_store.etag("users/u/p/image.jpg") == etag_of(b"jpeg")  # as S3 events name it
    s3_store.delete("users/u/p/image.jpg")
    assert s3_store.etag("users/u/p/image.jpg") is None
    assert not s3_store.exists("users/u/p/image.jpg")
    with pytest.raises(ObjectNotFoundError):
        s3_store.get("users/u/p/image.jpg")


def test_delete_prefix(s3_store: S3ObjectStore) -> None:
    for key in ("users/1/a", "users/1/b/c", "users/10/d"):
        s3_store.put(key, b"x")
    assert s3_store.delete_prefix("users/1/") == 2
    assert s3_store.exists("users/10/d") and not s3_store.exists("users/1/a")


def test_presigned_get_url(s3_store: S3ObjectStore) -> None:
    s3_store.put("users/u/heat.png", b"PNG", "image/png")
    url = s3_store.url("users/u/heat.png", expires=60)
    assert "X-Amz-Signature" in url and "X-Amz-Expires=60" in url
    response = httpx2.get(url)
    assert response.status_code == 200 and response.content == b"PNG"


def test_presigned_post_upload(s3_store: S3ObjectStore) -> None:
    post = s3_store.presign_post("guests/p/image.jpg", ["image/jpeg"], max_bytes=1000)
    ok = httpx2.post(post.url, data=post.fields, files={"file": ("a.jpg", b"jpeg", "image/jpeg")})
    assert ok.status_code in (200, 204), ok.text
    assert s3_store.get("guests/p/image.jpg") == b"jpeg"


def test_history_with_s3_backend(
    moto_endpoint: str, s3_store: S3ObjectStore, settings: Settings, tmp_path: Path
) -> None:
    """The whole app on S3: prediction URLs are presigned S3 URLs that work."""
    from skinscan.local_stack import create_app
    from skinscan_common.db import get_engine, session_factory
    from skinscan_common.services import predictions

    s3_settings = settings.model_copy(
        update={
            "storage_backend": "s3",
            "bucket": s3_store.bucket,
            "s3_endpoint_url": moto_endpoint,
        }
    )
    store = build_object_store(s3_settings)
    with TestClient(create_app(s3_settings, apply_migrations=False)) as client:
        password = "correct horse battery"
        reg = client.post(
            "/v1/auth/register", json={"email": "s3@example.com", "password": password}
        ).json()
        user_id = reg["user"]["id"]
        headers = {"Authorization": f"Bearer {reg['tokens']['access_token']}"}
        key = f"users/{user_id}/predictions/x/image.jpg"
        store.put(key, b"JPEG", "image/jpeg")
        with session_factory(get_engine(s3_settings.database_url))() as session:
            import uuid

            row = predictions.create_pending(session, image_key=key, owner_id=uuid.UUID(user_id))
            session.commit()
        view = client.get(f"/v1/predictions/{row.id}", headers=headers).json()
        assert view["image_url"].startswith(moto_endpoint)
        assert httpx2.get(view["image_url"]).content == b"JPEG"
        gone = client.request("DELETE", "/v1/auth/me", json={"password": password}, headers=headers)
        assert gone.status_code == 204
        assert not store.exists(key)


def test_urls_on_aws_name_the_bucket_s_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presigned URLs point at the regional host, not the global one that may redirect."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = S3ObjectStore("skinscan-dev-1-eu-west-1", region="eu-west-1")
    regional = "https://skinscan-dev-1-eu-west-1.s3.eu-west-1.amazonaws.com/"
    assert store.url("uploads/guest/x.jpg").startswith(regional)
    assert store.presign_post("uploads/guest/x", ["image/jpeg"], 1000).url == regional
