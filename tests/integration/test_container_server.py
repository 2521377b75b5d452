"""The inference container's app (SageMaker contract), tested directly: no Docker here."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator

import boto3
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from moto import mock_aws
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import Prediction
from skinscan_common.services import predictions
from skinscan_common.storage import heatmap_key, image_key, overlay_key
from skinscan_engine.engine import RESULT_KEYS, Engine
from skinscan_engine.server import create_app
from skinscan_engine.serving import BatchSettings, ScoringService
from tests import image_samples as samples

BUCKET = "skinscan-container-test"


@pytest.fixture
def s3_settings(settings: Settings) -> Iterator[Settings]:
    with mock_aws():
        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield settings.model_copy(update={"storage_backend": "s3", "bucket": BUCKET})


@pytest.fixture
def service(engine: Engine) -> Iterator[ScoringService]:
    svc = ScoringService(engine, BatchSettings(max_batch_size=8, max_wait_ms=20))
    yield svc
    svc.close()


@pytest.fixture
def container(service: ScoringService, s3_settings: Settings) -> Iterator[TestClient]:
    app = create_app(load=lambda: service, settings=s3_settings, background_load=False)
    with TestClient(app) as client:
        yield client


def _jpeg(client: TestClient, data: bytes, **headers: str):
    return client.post(
        "/invocations", content=data, headers={"Content-Type": "image/jpeg", **headers}
    )


def test_ping_is_503_until_the_model_is_loaded(service: ScoringService, settings: Settings) -> None:
    release = threading.Event()

    def slow_load() -> ScoringService:
        release.wait(10)
        return service

    app: FastAPI = create_app(load=slow_load, settings=settings, background_load=True)
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 503
        r = _jpeg(client, samples.jpeg())
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        release.set()
        for _ in range(200):
            if client.get("/ping").status_code == 200:
                break
            threading.Event().wait(0.05)
        ping = client.get("/ping")
        assert ping.status_code == 200 and ping.json()["model_version"] == "test-random"


def test_ping_waits_for_the_warm_up(service: ScoringService, settings: Settings) -> None:
    release = threading.Event()
    warmed: list[float] = []
    real_warm_up = service.warm_up

    def slow_warm_up() -> float:
        release.wait(10)
        warmed.append(real_warm_up())
        return warmed[-1]

    service.warm_up = slow_warm_up  # type: ignore[method-assign]
    app: FastAPI = create_app(load=lambda: service, settings=settings, background_load=True)
    with TestClient(app) as client:
        # Loaded but not yet warm: not ready, so no traffic is routed to it.
        assert client.get("/ping").status_code == 503
        release.set()
        for _ in range(200):
            if client.get("/ping").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/ping").status_code == 200
    assert len(warmed) == 1 and warmed[0] > 0


def test_ping_reports_a_failed_warm_up(service: ScoringService, settings: Settings) -> None:
    def broken() -> float:
        raise RuntimeError("cuDNN failed to initialise")

    service.warm_up = broken  # type: ignore[method-assign]
    with TestClient(
        create_app(load=lambda: service, settings=settings, background_load=False)
    ) as c:
        r = c.get("/ping")
        assert r.status_code == 503 and "cuDNN failed" in r.json()["error"]
        assert _jpeg(c, samples.jpeg()).status_code == 503


def test_ping_reports_a_failed_load(settings: Settings) -> None:
    def broken() -> ScoringService:
        raise FileNotFoundError("no model in /opt/ml/model")

    with TestClient(create_app(load=broken, settings=settings, background_load=False)) as client:
        r = client.get("/ping")
        assert r.status_code == 503 and "no model" in r.json()["error"]


def test_image_body_gives_result_json(container: TestClient, ham_images: list[bytes]) -> None:
    r = _jpeg(container, ham_images[0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert tuple(body) == RESULT_KEYS
    png = container.post(
        "/invocations", content=samples.rgba_png(), headers={"Content-Type": "image/png"}
    )
    assert png.status_code == 200


def test_heatmaps_inline_on_request(container: TestClient, ham_images: list[bytes]) -> None:
    r = _jpeg(container, ham_images[1], **{"X-Amzn-SageMaker-Custom-Attributes": "heatmaps=base64"})
    body = r.json()
    for name in ("heatmap_png_base64", "overlay_png_base64"):
        assert base64.b64decode(body[name]).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"", "image/jpeg", 422, "empty"),
        (samples.truncated_jpeg(), "image/jpeg", 422, "corrupt"),
        (samples.text_as_jpg(), "image/jpeg", 422, "not_an_image"),
        (samples.huge_png_header(), "image/png", 413, "too_many_pixels"),
        (samples.jpeg(), "text/plain", 415, "unsupported_media_type"),
        (b"{not json", "application/json", 400, "malformed_json"),
        (b'{"bucket": "b"}', "application/json", 422, "validation_error"),
    ],
    ids=["zero-bytes", "truncated", "text", "100-megapixel", "text-plain", "bad-json", "fields"],
)
def test_bad_input_is_4xx_and_the_server_keeps_serving(
    container: TestClient,
    data: bytes,
    content_type: str,
    status: int,
    code: str,
    ham_images: list[bytes],
) -> None:
    r = container.post("/invocations", content=data, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert container.get("/ping").status_code == 200
    assert _jpeg(container, ham_images[2]).status_code == 200


@pytest.mark.parametrize(
    "make",
    [
        samples.cmyk_jpeg,
        samples.png16,
        samples.rgba_png,
        samples.palette_png,
        lambda: samples.exif_rotated_jpeg()[0],
    ],
    ids=["cmyk", "16-bit", "rgba", "palette", "exif-rotated"],
)
def test_awkward_modes_are_scored(container: TestClient, make) -> None:
    data = make()
    content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    r = container.post("/invocations", content=data, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] in ("benign", "malignant", "unknown")


def test_concurrent_requests_are_micro_batched(
    container: TestClient, service: ScoringService, ham_images: list[bytes]
) -> None:
    results: list[int] = []
    before_batches, before_items = service.batcher.batches, service.batcher.items

    def call(i: int) -> None:
        results.append(_jpeg(container, ham_images[i % len(ham_images)]).status_code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [200] * 8
    assert service.batcher.items - before_items == 8
    assert service.batcher.batches - before_batches < 8  # at least one batch held several


def _pending(session: Session, owner: uuid.UUID | None = None) -> tuple[uuid.UUID, str]:
    pid = uuid.uuid4()
    key = image_key(pid, owner)
    predictions.create_pending(session, image_key=key, owner_id=owner, prediction_id=pid)
    session.commit()
    return pid, key


def test_object_request_completes_the_row(
    container: TestClient, s3_settings: Settings, session: Session, ham_images: list[bytes]
) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    pid, key = _pending(session)
    s3.put_object(Bucket=BUCKET, Key=key, Body=ham_images[3], ContentType="image/jpeg")
    body = {"bucket": BUCKET, "key": key, "prediction_id": str(pid)}
    r = container.post("/invocations", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["prediction_id"] == str(pid)
    assert answer["verdict"] in ("benign", "malignant", "unknown")
    session.expire_all()
    row = session.get(Prediction, pid)
    assert row is not None and row.status == "done"
    assert row.verdict == answer["verdict"] and row.model_version == "test-random"
    assert row.heatmap_key == heatmap_key(pid, None) and row.overlay_key == overlay_key(pid, None)
    for k in (row.heatmap_key, row.overlay_key):
        assert s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().startswith(b"\x89PNG")
    # A retried invocation answers the stored result and does no work twice.
    again = container.post("/invocations", json=body)
    assert again.status_code == 200 and again.json()["p_malignant"] == answer["p_malignant"]


def test_object_request_errors(container: TestClient, session: Session) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    pid, key = _pending(session)
    s3.put_object(Bucket=BUCKET, Key=key, Body=samples.text_as_jpg())
    body = {"bucket": BUCKET, "key": key, "prediction_id": str(pid)}
    r = container.post("/invocations", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_an_image"
    session.expire_all()
    row = session.get(Prediction, pid)
    assert row is not None and row.status == "failed" and row.error

    other, other_key = _pending(session)
    wrong = container.post(
        "/invocations", json={"bucket": BUCKET, "key": key, "prediction_id": str(other)}
    )
    assert wrong.status_code == 409
    missing = container.post(
        "/invocations", json={"bucket": BUCKET, "key": other_key, "prediction_id": str(other)}
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "object_not_found"
    unknown = container.post(
        "/invocations", json={"bucket": BUCKET, "key": key, "prediction_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404
    assert container.get("/ping").status_code == 200


def test_batch_items_one_answer_each(container: TestClient, ham_images: list[bytes]) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.put_object(Bucket=BUCKET, Key="batch/in/a.jpg", Body=ham_images[5])
    s3.put_object(Bucket=BUCKET, Key="batch/in/b.jpg", Body=samples.text_as_jpg())
    items = [
        {
            "key": "batch/in/a.jpg",
            "heatmap_key": "batch/out/a.heatmap.png",
            "overlay_key": "batch/out/a.overlay.png",
        },
        {"key": "batch/in/b.jpg"},
        {"key": "batch/in/missing.jpg"},
    ]
    r = container.post("/invocations", json={"bucket": BUCKET, "items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["done", "rejected", "rejected"]
    assert results[0]["verdict"] in ("benign", "malignant", "unknown")
    body = s3.get_object(Bucket=BUCKET, Key="batch/out/a.overlay.png")["Body"].read()
    assert body.startswith(b"\x89PNG")
    assert container.post("/invocations", json={"bucket": BUCKET, "items": []}).status_code == 422


def test_a_full_chunk_with_long_keys_is_not_refused_for_its_size(container: TestClient) -> None:
    """256 items (the most a chunk holds) with keys near S3's 1,024 bytes: about 800 KB of
    JSON, far over the functions' 64 KB limit, which the container must not apply."""
    stem = "batch/job/" + "k" * 980
    items = [
        {
            "key": f"{stem}{i:04d}.jpg",
            "heatmap_key": f"{stem}{i:04d}.h",
            "overlay_key": f"{stem}{i:04d}.o",
        }
        for i in range(256)
    ]
    r = container.post("/invocations", json={"bucket": BUCKET, "items": items})
    assert r.status_code == 200, r.text[:300]
    assert [x["status"] for x in r.json()["results"]] == ["rejected"] * 256  # no such objects


@pytest.mark.parametrize("content_type", ["Image/JPEG", "application/x-image", "IMAGE/PNG"])
def test_photo_content_types_in_any_case(
    container: TestClient, ham_images: list[bytes], content_type: str
) -> None:
    photo = ham_images[2] + b"\0" * 100_000  # over 64 KB, as phone photos are
    r = container.post("/invocations", content=photo, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] in ("benign", "malignant", "unknown")
