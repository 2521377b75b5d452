"""``POST /v1/predict`` in the local stack, and the in-process endpoint client."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import Prediction
from skinscan_common.deps import endpoint_client, object_store
from skinscan_common.endpoint import get_endpoint_client
from skinscan_common.errors import AppError
from skinscan_common.services import predictions
from skinscan_common.storage import image_key
from skinscan_engine.engine import RESULT_KEYS, Engine
from skinscan_engine.local_client import LocalEndpointClient
from skinscan_engine.serving import BatchSettings, ScoringService
from tests import image_samples as samples


@pytest.fixture
def local_client(settings: Settings, engine: Engine) -> Iterator[LocalEndpointClient]:
    svc = ScoringService(engine, BatchSettings(max_batch_size=4, max_wait_ms=2))
    client = LocalEndpointClient(settings, service=svc)
    yield client
    client.close()


@pytest.fixture
def api(app: FastAPI, local_client: LocalEndpointClient) -> Iterator[TestClient]:
    app.dependency_overrides[endpoint_client] = lambda: local_client
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(endpoint_client, None)


def _post(
    api: TestClient,
    data: bytes,
    headers: dict[str, str] | None = None,
    name: str = "lesion.jpg",
    content_type: str = "image/jpeg",
):
    return api.post(
        "/v1/predict", files={"image": (name, data, content_type)}, headers=headers or {}
    )


def _local_get(api: TestClient, url: str) -> Any:
    parts = urlsplit(url)
    return api.get(f"{parts.path}?{parts.query}")


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Prediction)) or 0


def test_guest_gets_the_result_and_nothing_is_kept(
    api: TestClient, session: Session, ham_images: list[bytes]
) -> None:
    r = _post(api, ham_images[0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(RESULT_KEYS) <= set(body)
    assert body["stored"] is False and body["id"] is None and body["image_url"] is None
    for name in ("heatmap_url", "overlay_url"):
        prefix = "data:image/png;base64,"
        assert body[name].startswith(prefix)
        assert base64.b64decode(body[name][len(prefix) :]).startswith(b"\x89PNG")
    assert _count(session) == 0


def test_signed_in_prediction_is_stored_and_in_history(
    api: TestClient, register: Any, ham_images: list[bytes]
) -> None:
    ada = register()
    r = _post(api, ham_images[1], ada["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] is True and body["id"]
    for name in ("image_url", "heatmap_url", "overlay_url"):
        got = _local_get(api, body[name])
        assert got.status_code == 200, name
    assert _local_get(api, body["image_url"]).content == ham_images[1]
    assert _local_get(api, body["overlay_url"]).content.startswith(b"\x89PNG")
    page = api.get("/v1/predictions", headers=ada["headers"]).json()
    assert [item["id"] for item in page["items"]] == [body["id"]]
    one = api.get(f"/v1/predictions/{body['id']}", headers=ada["headers"]).json()
    assert one["verdict"] == body["verdict"] and one["p_malignant"] == body["p_malignant"]
    assert one["heatmap_url"] and one["status"] == "done"
    # Someone else cannot see it.
    bob = register("bob@example.com")
    assert api.get(f"/v1/predictions/{body['id']}", headers=bob["headers"]).status_code == 404


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty"),
        (samples.text_as_jpg(), 415, "unsupported_media_type"),
        (samples.truncated_jpeg(), 422, "corrupt"),
        (samples.huge_png_header(), 413, "too_many_pixels"),
    ],
    ids=["zero-bytes", "text-named-jpg", "truncated-jpeg", "100-megapixel-png"],
)
def test_bad_uploads(
    api: TestClient, data: bytes, status: int, code: str, ham_images: list[bytes]
) -> None:
    r = _post(api, data)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert _post(api, ham_images[2]).status_code == 200  # still serving


def test_awkward_but_valid_photos(api: TestClient) -> None:
    for data in (
        samples.cmyk_jpeg(),
        samples.png16(),
        samples.palette_png(),
        samples.exif_rotated_jpeg()[0],
    ):
        assert _post(api, data).status_code == 200


def test_missing_field_and_bad_token(api: TestClient, ham_images: list[bytes]) -> None:
    assert api.post("/v1/predict", files={"photo": ("a.jpg", ham_images[0])}).status_code == 422
    bad = _post(api, ham_images[0], {"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401


def test_too_large_upload(api: TestClient, settings: Settings) -> None:
    big = b"\xff\xd8\xff" + b"\0" * (settings.max_upload_bytes + 10)
    assert _post(api, big).status_code == 413


def test_get_endpoint_client_loads_the_local_engine(
    settings: Settings, random_model_dir, ham_images: list[bytes]
) -> None:
    local = settings.model_copy(update={"model_path": random_model_dir, "endpoint_mode": "local"})
    client = get_endpoint_client(local)
    try:
        assert isinstance(client, LocalEndpointClient)
        answer = client.predict_image(ham_images[0], "image/jpeg")
        assert answer["heatmap_png"].startswith(b"\x89PNG")
        assert answer["model_version"] == "test-random"
        with pytest.raises(AppError) as info:
            client.predict_image(b"", "image/jpeg")
        assert info.value.status_code == 422
    finally:
        client.close()


def test_local_score_object_completes_the_row(
    local_client: LocalEndpointClient,
    settings: Settings,
    session: Session,
    ham_images: list[bytes],
) -> None:
    store = object_store(settings)
    owner = None
    pid = uuid.uuid4()
    key = image_key(pid, owner)
    store.put(key, ham_images[4], "image/jpeg")
    predictions.create_pending(session, image_key=key, owner_id=owner, prediction_id=pid)
    session.commit()
    answer = local_client.score_object(settings.bucket, key, str(pid))
    assert answer["verdict"] in ("benign", "malignant", "unknown")
    session.expire_all()
    row = session.get(Prediction, pid)
    assert row is not None and row.status == "done" and row.heatmap_key
    assert store.get(row.heatmap_key).startswith(b"\x89PNG")
    with pytest.raises(AppError):
        local_client.score_object("another-bucket", key, str(pid))


def test_no_model_yet_is_a_502_not_a_crash(
    app: FastAPI, settings: Settings, tmp_path, ham_images: list[bytes]
) -> None:
    empty = settings.model_copy(update={"model_path": tmp_path / "no-model"})
    client = LocalEndpointClient(empty)
    app.dependency_overrides[endpoint_client] = lambda: client
    try:
        with TestClient(app) as api:
            r = _post(api, ham_images[0])
        assert r.status_code == 502 and r.json()["error"]["code"] == "model_unavailable"
    finally:
        app.dependency_overrides.pop(endpoint_client, None)
