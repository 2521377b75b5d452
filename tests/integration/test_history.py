"""History: list, read, delete; only the owner sees a prediction."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinscan_common.db import Prediction
from skinscan_common.services import predictions
from skinscan_common.storage import ObjectStore


def _b64(value: object) -> str:
    """A cursor-shaped string: URL-safe base64 of JSON, as the API's own cursors are."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _local_get(client: TestClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def test_list_newest_first_with_cursor(
    client: TestClient, register: Any, make_prediction: Any
) -> None:
    ada = register()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [
        make_prediction(ada["user"]["id"], created_at=base + timedelta(minutes=i)) for i in range(5)
    ]
    # Two rows with the same timestamp: the id breaks the tie, nothing is skipped or repeated.
    made += [make_prediction(ada["user"]["id"], created_at=base + timedelta(minutes=2))]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/predictions", params=params, headers=ada["headers"])
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(str(p.id) for p in made)
    assert len(seen) == len(set(seen)) == 6
    times = [next(p.created_at for p in made if str(p.id) == s) for s in seen]
    assert times == sorted(times, reverse=True)


def test_filter_by_verdict(client: TestClient, register: Any, make_prediction: Any) -> None:
    ada = register()
    make_prediction(ada["user"]["id"], "benign")
    bad = make_prediction(ada["user"]["id"], "malignant")
    page = client.get("/v1/predictions?verdict=malignant", headers=ada["headers"]).json()
    assert [i["id"] for i in page["items"]] == [str(bad.id)]
    assert page["items"][0]["verdict"] == "malignant"
    wrong = client.get("/v1/predictions?verdict=maybe", headers=ada["headers"])
    assert wrong.status_code == 422


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        _b64({"t": "2026-01-01T00:00:00+00:00", "id": 5}),
        _b64({"t": 5, "id": "00000000-0000-0000-0000-000000000000"}),
        _b64({"t": "2026-01-01T00:00:00", "id": "00000000-0000-0000-0000-000000000000"}),
        _b64(["not", "an", "object"]),
        _b64("text"),
        # Dates whose UTC time falls off the calendar: they overflow when converted.
        _b64({"t": "0001-01-01T00:00:00+01:00", "id": "00000000-0000-0000-0000-000000000000"}),
        _b64({"t": "9999-12-31T23:59:59-01:00", "id": "00000000-0000-0000-0000-000000000000"}),
    ],
    ids=[
        "not-base64-json",
        "number-id",
        "number-time",
        "naive-time",
        "list",
        "string",
        "before-year-1",
        "after-year-9999",
    ],
)
def test_bad_cursor(client: TestClient, register: Any, cursor: str) -> None:
    ada = register()
    r = client.get("/v1/predictions", params={"cursor": cursor}, headers=ada["headers"])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"


def test_get_with_short_lived_urls(client: TestClient, register: Any, make_prediction: Any) -> None:
    ada = register()
    row = make_prediction(ada["user"]["id"], "malignant")
    r = client.get(f"/v1/predictions/{row.id}", headers=ada["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "malignant" and body["probabilities"]["mel"] == 0.8
    assert body["status"] == "done" and body["model_version"] == "test-1"
    image = _local_get(client, body["image_url"])
    assert image.status_code == 200 and image.content == b"JPEG"
    assert image.headers["content-type"] == "image/jpeg"
    assert _local_get(client, body["heatmap_url"]).content == b"PNG-heat"
    assert _local_get(client, body["overlay_url"]).content == b"PNG-over"
    tampered = body["image_url"].replace(".jpg?", ".png?")
    assert _local_get(client, tampered).status_code == 403


def test_a_failed_prediction_links_to_no_photo(
    client: TestClient, register: Any, session: Session, store: ObjectStore
) -> None:
    """What was uploaded for a failed prediction may be what was refused (a page or an SVG sent
    as the photo): the answer says why and links to nothing."""
    ada = register()
    answer = client.post("/v1/uploads", json={"content_type": "image/png"}, headers=ada["headers"])
    key = answer.json()["upload"]["key"]
    store.put(key, b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>", "image/png")
    row = session.get(Prediction, uuid.UUID(answer.json()["id"]))
    assert row is not None
    predictions.record_failure(row, "The file is not an image we can read.")
    session.commit()
    body = client.get(f"/v1/predictions/{row.id}", headers=ada["headers"]).json()
    assert body["status"] == "failed" and body["error"] == "The file is not an image we can read."
    assert body["image_url"] is None
    assert body["heatmap_url"] is None and body["overlay_url"] is None


def test_delete_removes_objects(
    client: TestClient, register: Any, make_prediction: Any, store: ObjectStore
) -> None:
    ada = register()
    row = make_prediction(ada["user"]["id"])
    assert client.delete(f"/v1/predictions/{row.id}", headers=ada["headers"]).status_code == 204
    assert client.get(f"/v1/predictions/{row.id}", headers=ada["headers"]).status_code == 404
    for key in (row.image_key, row.heatmap_key, row.overlay_key):
        assert not store.exists(key)


def test_other_users_prediction_is_404(
    client: TestClient, register: Any, make_prediction: Any, store: ObjectStore
) -> None:
    ada, bob = register("ada@example.com"), register("bob@example.com")
    row = make_prediction(ada["user"]["id"])
    guest = make_prediction(None)
    for target in (row, guest):
        read = client.get(f"/v1/predictions/{target.id}", headers=bob["headers"])
        assert read.status_code == 404
        assert read.json()["error"]["code"] == "not_found"
        assert (
            client.delete(f"/v1/predictions/{target.id}", headers=bob["headers"]).status_code == 404
        )
    missing = client.get(
        "/v1/predictions/00000000-0000-4000-8000-000000000000", headers=bob["headers"]
    )
    assert missing.status_code == 404 and missing.json() == read.json()
    assert client.get("/v1/predictions", headers=bob["headers"]).json()["items"] == []
    assert store.exists(row.image_key)
    assert client.get(f"/v1/predictions/{row.id}", headers=ada["headers"]).status_code == 200


def test_history_requires_login(client: TestClient) -> None:
    assert client.get("/v1/predictions").status_code == 401


def test_delete_account_removes_predictions_and_objects(
    client: TestClient,
    register: Any,
    make_prediction: Any,
    store: ObjectStore,
    session: Session,
) -> None:
    ada, bob = register("ada@example.com"), register("bob@example.com")
    rows = [make_prediction(ada["user"]["id"]) for _ in range(2)]
    kept = make_prediction(bob["user"]["id"])
    gone = client.request(
        "DELETE", "/v1/auth/me", json={"password": ada["password"]}, headers=ada["headers"]
    )
    assert gone.status_code == 204
    remaining = session.scalars(select(Prediction.id)).all()
    assert remaining == [kept.id]
    for row in rows:
        assert not store.exists(row.image_key) and not store.exists(row.heatmap_key)
    assert store.exists(kept.image_key)
    assert client.get(f"/v1/predictions/{kept.id}", headers=bob["headers"]).status_code == 200
