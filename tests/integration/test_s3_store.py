"""The S3 backend against moto: objects, presigned GET URLs and presigned POST uploads."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx2
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from skinscan_common.config import Settings
from skinscan_common.db import Prediction, get_engine, session_factory
from skinscan_common.deps import endpoint_client
from skinscan_common.s3events import etag_of
from skinscan_common.services import predictions
from skinscan_common.storage import ObjectNotFoundError, build_object_store, image_key
from skinscan_common.storage.s3 import S3ObjectStore
from tests.integration.conftest import result
from tests.support.net import free_port

#: Nothing listens there: every request to it is refused at once.
CLOSED_PORT_URL = "http://127.0.0.1:9"


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


def _on_s3(settings: Settings, bucket: str, endpoint_url: str) -> Settings:
    """``settings`` with the S3 store: ``bucket`` at ``endpoint_url``."""
    return settings.model_copy(
        update={"storage_backend": "s3", "bucket": bucket, "s3_endpoint_url": endpoint_url}
    )


def test_history_with_s3_backend(
    moto_endpoint: str, s3_store: S3ObjectStore, settings: Settings, tmp_path: Path
) -> None:
    """The whole app on S3: prediction URLs are presigned S3 URLs that work."""
    from skinscan.local_stack import create_app
    from skinscan_common.db import get_engine, session_factory
    from skinscan_common.services import predictions

    s3_settings = _on_s3(settings, s3_store.bucket, moto_endpoint)
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


def _policy_conditions(fields: dict[str, str]) -> list[Any]:
    return json.loads(base64.b64decode(fields["policy"]))["conditions"]


def test_presigned_post_allows_one_exact_type(s3_store: S3ObjectStore) -> None:
    """A prefix such as ``image/`` would let image/svg+xml through (a script the browser runs
    when the photo's URL is opened); a policy cannot allow two types, so the form takes one."""
    post = s3_store.presign_post("uploads/guest/x", ["image/jpeg", "image/png"], max_bytes=1000)
    conditions = _policy_conditions(post.fields)
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 1000] in conditions
    assert post.fields["Content-Type"] == "image/jpeg" and post.content_types == ("image/jpeg",)
    png = s3_store.presign_post("uploads/guest/y", ["image/png"], max_bytes=1000)
    assert {"Content-Type": "image/png"} in _policy_conditions(png.fields)
    assert png.content_types == ("image/png",)


def test_upload_form_on_s3_says_the_one_type_it_takes(
    moto_endpoint: str, s3_store: S3ObjectStore, settings: Settings
) -> None:
    """``POST /v1/uploads`` with no type asked for: the S3 form takes JPEG, and says so."""
    from skinscan.local_stack import create_app

    s3_settings = _on_s3(settings, s3_store.bucket, moto_endpoint)
    with TestClient(create_app(s3_settings, apply_migrations=False)) as client:
        answer = client.post("/v1/uploads")
        assert answer.status_code == 201, answer.text
        form = answer.json()["upload"]
        assert form["content_types"] == ["image/jpeg"]
        assert form["fields"]["Content-Type"] == "image/jpeg"
        assert {"Content-Type": "image/jpeg"} in _policy_conditions(form["fields"])
        png = client.post("/v1/uploads", json={"content_type": "image/png"}).json()["upload"]
        assert png["content_types"] == ["image/png"]
        assert {"Content-Type": "image/png"} in _policy_conditions(png["fields"])


class _CannedEndpoint:
    """The model's answer to any photo (the store is what these tests are about)."""

    def predict_image(self, image: bytes, content_type: str) -> dict[str, Any]:
        return {**result(), "heatmap_png": b"\x89PNG heat", "overlay_png": b"\x89PNG over"}


@pytest.fixture
def storage_down(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The whole app with its bucket behind a closed port."""
    from skinscan.local_stack import create_app

    # One refused connection per call, not botocore's default retries with their back-off.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    down = _on_s3(settings, "skinscan-down", CLOSED_PORT_URL)
    app = create_app(down, apply_migrations=False)
    app.dependency_overrides[endpoint_client] = _CannedEndpoint
    # What the client sees, as in service: a 500 too, not the exception raised into the test.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _assert_storage_unavailable(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("request_", ["POST /v1/predict", "GET report.pdf", "DELETE"])
def test_storage_down_is_a_503_to_retry(
    storage_down: TestClient, settings: Settings, request_: str
) -> None:
    client = storage_down
    reg = client.post(
        "/v1/auth/register", json={"email": "s3down@example.com", "password": "a long passphrase"}
    ).json()
    headers = {"Authorization": f"Bearer {reg['tokens']['access_token']}"}
    user_id = uuid.UUID(reg["user"]["id"])
    sessions = session_factory(get_engine(settings.database_url))
    with sessions() as session:
        pid = uuid.uuid4()
        row = predictions.create_pending(
            session, image_key=image_key(pid, user_id, "jpg"), owner_id=user_id, prediction_id=pid
        )
        predictions.record_result(row, result())
        session.commit()

    if request_ == "POST /v1/predict":
        photo = {"image": ("a.jpg", b"\xff\xd8\xff a photo", "image/jpeg")}
        _assert_storage_unavailable(client.post("/v1/predict", files=photo, headers=headers))
    elif request_ == "GET report.pdf":
        report = client.get(f"/v1/predictions/{pid}/report.pdf", headers=headers)
        _assert_storage_unavailable(report)
    else:
        _assert_storage_unavailable(client.delete(f"/v1/predictions/{pid}", headers=headers))
    with sessions() as session:
        # Nothing half done: no new scan kept without its photo, no deletion without its objects.
        assert session.scalars(select(Prediction.id)).all() == [pid]


def test_s3_calls_give_up_in_seconds_not_minutes() -> None:
    """A hanging S3 must become a 503 well inside a function's timeout: bounded waits and tries
    (botocore's defaults: 60 s per read, up to 5 tries)."""
    from skinscan_common.storage.s3 import S3ObjectStore

    config = S3ObjectStore("a-bucket", region="eu-west-1").client.meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 10
    assert config.retries["total_max_attempts"] <= 2
    worst = config.retries["total_max_attempts"] * (config.connect_timeout + config.read_timeout)
    assert worst < 29  # the predict function's timeout
