"""The local stack: composition, health, signed local uploads."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from skinscan.local_stack import FUNCTION_ROUTERS, create_app, load_routers
from skinscan_common.config import Settings
from skinscan_common.deps import object_store


def test_functions_composed(app: FastAPI) -> None:
    assert {"functions.auth.app", "functions.history.app"} <= set(app.state.functions)
    assert FUNCTION_ROUTERS[:2] == ["functions.auth.app", "functions.history.app"]


def test_missing_function_module_is_skipped() -> None:
    loaded = load_routers(["functions.auth.app", "functions.not_written_yet.app"])
    assert [name for name, _ in loaded] == ["functions.auth.app"]
    assert isinstance(loaded[0][1], APIRouter)


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "model": "off"}


def test_create_app_migrates_a_new_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, jwt_secret="k" * 40)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        r = client.post(
            "/v1/auth/register",
            json={"email": "new@example.com", "password": "correct horse battery"},
        )
        assert r.status_code == 201
    assert (tmp_path / "skinscan.db").exists()


def test_signed_local_upload(client: TestClient, settings: Settings) -> None:
    store = object_store(settings)
    post = store.presign_post("guests/abc/image.jpg", ["image/jpeg"], max_bytes=100)
    assert post.url == "http://testserver/local-uploads"
    files = {"file": ("a.jpg", io.BytesIO(b"jpeg-bytes"), "image/jpeg")}
    assert client.post("/local-uploads", data=post.fields, files=files).status_code == 204
    assert store.get("guests/abc/image.jpg") == b"jpeg-bytes"
    too_big = {"file": ("a.jpg", io.BytesIO(b"x" * 101), "image/jpeg")}
    assert client.post("/local-uploads", data=post.fields, files=too_big).status_code == 403
    wrong_type = {"file": ("a.html", io.BytesIO(b"<html>"), "text/html")}
    assert client.post("/local-uploads", data=post.fields, files=wrong_type).status_code == 403
    forged = {**post.fields, "key": "users/someone/evil.jpg"}
    files = {"file": ("a.jpg", io.BytesIO(b"jpeg"), "image/jpeg")}
    assert client.post("/local-uploads", data=forged, files=files).status_code == 403
    assert not store.exists("users/someone/evil.jpg")


def test_local_object_route_rejects_bad_links(client: TestClient) -> None:
    assert client.get("/local-objects/users/x/a.png?expires=1&sig=abc").status_code == 403
    assert client.get("/local-objects/users/x/a.png").status_code == 422


def test_openapi_lists_health_but_not_the_local_object_routes(tmp_path: Path) -> None:
    """README's API table lists ``GET /health``: the schema must too. The signed local object
    routes are plumbing and stay out of it (but still answer)."""
    settings = Settings(data_dir=tmp_path, jwt_secret="k" * 40)
    with TestClient(create_app(settings)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert client.get("/local-objects/users/x/a.png?expires=1&sig=abc").status_code == 403
        assert client.post("/local-uploads").status_code == 422
    assert paths["/health"]["get"]["tags"] == ["ops"]
    assert "503" in paths["/health"]["get"]["responses"]
    assert not [p for p in paths if p.startswith(("/local-objects", "/local-uploads"))]
