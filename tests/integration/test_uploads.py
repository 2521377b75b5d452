"""``POST /v1/uploads`` and the local upload flow (both databases, local objects, local engine).

The local stack stores an upload at its signed URL and hands the same S3 ``ObjectCreated``
event to ``functions/on_upload`` in a background thread (as S3 invokes Lambda), which scores
the photo with the in-process engine.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from skinscan.local_stack import create_app
from skinscan_common.config import Settings
from skinscan_common.s3events import S3Object, object_created_event, parse_s3_event
from skinscan_common.services.uploads import is_form_upload_key, prediction_id_of
from tests.engine_fixtures import ham_fixture_paths


def test_prediction_id_of_upload_keys() -> None:
    pid, user = uuid.uuid4(), uuid.uuid4()
    assert prediction_id_of(f"uploads/guest/{pid}") == pid
    assert prediction_id_of(f"uploads/{user}/{pid}.jpg") == pid
    for key in (
        f"uploads/{pid}",
        f"uploads/someone/{pid}",
        f"results/guest/{pid}",
        "uploads/guest/nope",
        f"uploads/guest/{pid}/x",
    ):
        assert prediction_id_of(key) is None
    # The form writes keys without an extension; POST /v1/predict keeps photos with one.
    assert is_form_upload_key(f"uploads/guest/{pid}")
    assert is_form_upload_key(f"uploads/{user}/{pid}")
    assert not is_form_upload_key(f"uploads/{user}/{pid}.jpg")
    assert not is_form_upload_key(f"uploads/someone/{pid}")


def test_s3_event_round_trip() -> None:
    obj = S3Object("bucket-1", "uploads/guest/a b+c.jpg", "abc123", 42)
    assert parse_s3_event(object_created_event([obj])) == [obj]
    with pytest.raises(ValueError, match="no Records"):
        parse_s3_event({"Records": []})
    with pytest.raises(ValueError, match="not an S3 object notification"):
        parse_s3_event({"Records": [{"eventSource": "aws:sqs"}]})


def test_create_upload_guest_and_signed_in(
    client: TestClient, register: Any, settings: Settings
) -> None:
    guest = client.post("/v1/uploads", json={"content_type": "image/png"})
    assert guest.status_code == 201, guest.text
    body = guest.json()
    assert body["status"] == "pending" and body["guest_token"]
    assert body["upload"]["key"] == f"uploads/guest/{body['id']}"
    assert body["upload"]["url"] == "http://testserver/local-uploads"
    assert body["upload"]["content_types"] == ["image/png"]
    assert body["upload"]["max_bytes"] == settings.max_upload_bytes
    headers = register()["headers"]
    mine = client.post("/v1/uploads", headers=headers).json()  # no body: JPEG or PNG
    assert mine["guest_token"] is None and mine["upload"]["content_types"] == [
        "image/jpeg",
        "image/png",
    ]
    assert client.get(f"/v1/predictions/{mine['id']}", headers=headers).json()["status"] == (
        "pending"
    )
    refused = client.post("/v1/uploads", json={"content_type": "image/svg+xml"})
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "unsupported_media_type"
    assert client.post("/v1/uploads", json={"nope": 1}).status_code == 422


@pytest.fixture(name="stack")
def stack_fixture(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The local stack with the random-weights model in process."""
    model = request.getfixturevalue("random_model_dir")
    app: FastAPI = create_app(
        settings.model_copy(update={"model_path": model}), apply_migrations=False
    )
    with TestClient(app) as client:
        yield client


def _wait(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        view = client.get(url, headers=headers).json()
        if view["status"] != "pending":
            return view
        time.sleep(0.2)
    raise AssertionError(f"{url} still pending")


def _upload(client: TestClient, headers: dict[str, str], photo: bytes, kind: str) -> dict:
    answer = client.post("/v1/uploads", json={"content_type": kind}, headers=headers).json()
    files = {"file": ("photo", io.BytesIO(photo), kind)}
    form = answer["upload"]
    assert client.post(form["url"], data=form["fields"], files=files).status_code == 204
    return answer


@pytest.mark.slow
def test_local_upload_flow_done_with_heatmap_in_history(stack: TestClient) -> None:
    reg = stack.post(
        "/v1/auth/register", json={"email": "l@example.com", "password": "a long passphrase!"}
    ).json()
    headers = {"Authorization": f"Bearer {reg['tokens']['access_token']}"}
    photo = ham_fixture_paths()[0].read_bytes()
    answer = _upload(stack, headers, photo, "image/jpeg")
    view = _wait(stack, f"/v1/predictions/{answer['id']}", headers)
    assert view["status"] == "done" and view["verdict"] in ("benign", "malignant", "unknown")
    heatmap = stack.get(view["heatmap_url"])
    assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG")
    history = stack.get("/v1/predictions", headers=headers).json()["items"]
    assert [item["id"] for item in history] == [answer["id"]]

    # A guest's non-image (declared as a PNG): failed with the reason, polled by token only.
    guest = _upload(stack, {}, b"<html>not a photo</html>", "image/png")
    token = {"X-Capability-Token": guest["guest_token"]}
    failed = _wait(stack, f"/v1/predictions/{guest['id']}", token)
    assert failed["status"] == "failed" and "not an image" in failed["error"]
    assert stack.get(f"/v1/predictions/{guest['id']}").status_code == 401


def test_local_upload_refuses_oversized_and_wrong_type(client: TestClient) -> None:
    answer = client.post("/v1/uploads", json={"content_type": "image/jpeg"}).json()
    form = answer["upload"]
    too_big = {
        "file": ("a.jpg", io.BytesIO(b"\xff\xd8\xff" + b"\0" * form["max_bytes"]), "image/jpeg")
    }
    refused = client.post(form["url"], data=form["fields"], files=too_big)
    assert refused.status_code in (403, 413) and "larger" in refused.json()["error"]["message"]
    html = {"file": ("a.html", io.BytesIO(b"<html>"), "text/html")}
    refused = client.post(form["url"], data=form["fields"], files=html)
    assert refused.status_code == 403 and "not allowed" in refused.json()["error"]["message"]


def test_sample_events_parse() -> None:
    import json

    root = Path(__file__).resolve().parents[2] / "events"
    (obj,) = parse_s3_event(json.loads((root / "on_upload" / "object_created.json").read_text()))
    assert prediction_id_of(obj.key) is not None
    (manifest,) = parse_s3_event(
        json.loads((root / "batch_start" / "manifest_created.json").read_text())
    )
    from skinscan_common.services.batch import ChunkMessage, job_of_manifest

    assert job_of_manifest(manifest.key) == "job-2026-11-30"
    record = json.loads((root / "batch_worker" / "chunk.json").read_text())["Records"][0]
    assert ChunkMessage.from_json(record["body"]).job_id == "job-2026-11-30"


def test_guest_capability_token_expires(client: TestClient, session: Any, settings: Any) -> None:
    from datetime import timedelta

    from skinscan_common.db import Prediction

    guest = client.post("/v1/uploads", json={"content_type": "image/jpeg"}).json()
    token = {"X-Capability-Token": guest["guest_token"]}
    url = f"/v1/predictions/{guest['id']}"
    assert client.get(url, headers=token).json()["status"] == "pending"
    # A day later (the default guest_token_ttl_s) the same link opens nothing.
    row = session.get(Prediction, uuid.UUID(guest["id"]))
    row.created_at -= timedelta(seconds=settings.guest_token_ttl_s + 1)
    session.commit()
    expired = client.get(url, headers=token)
    assert expired.status_code == 404 and expired.json()["error"]["code"] == "not_found"


def test_upload_forms_from_one_address_are_limited(settings: Settings, session: Any) -> None:
    """Each form is a pending prediction: one address (a guest's, say) gets so many an hour,
    and a refused one leaves no row behind; other addresses are not held up."""
    from sqlalchemy import func, select

    from skinscan_common.db.models import Prediction

    strict = settings.model_copy(update={"upload_forms_per_client": 2})
    app = create_app(strict, apply_migrations=False)
    body = {"content_type": "image/jpeg"}
    with TestClient(app, client=("203.0.113.9", 4000)) as guest:
        codes = [guest.post("/v1/uploads", json=body).status_code for _ in range(3)]
        assert codes == [201, 201, 429]
        refused = guest.post("/v1/uploads", json=body)
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert session.scalar(select(func.count()).select_from(Prediction)) == 2
    with TestClient(app, client=("198.51.100.4", 4000)) as other:
        assert other.post("/v1/uploads", json=body).status_code == 201
