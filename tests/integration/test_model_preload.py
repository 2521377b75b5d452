"""The local stack loads and warms the model at start-up, and says so on /health."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skinscan.local_stack import create_app
from skinscan.model_preload import ModelPreload
from skinscan_common.config import Settings
from skinscan_common.deps import endpoint_client
from skinscan_engine.local_client import LocalEndpointClient


def _model_status(client: TestClient, timeout: float = 120) -> dict:
    """/health's body once the model is no longer loading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/health").json()
        if body["model"] != "loading":
            return body
        time.sleep(0.05)
    pytest.fail("the model was still loading after the timeout")


def test_preload_warms_the_client_the_api_uses(
    settings: Settings, random_model_dir: Path, ham_images: list[bytes]
) -> None:
    local = settings.model_copy(update={"model_path": random_model_dir})
    app = create_app(local, apply_migrations=False, preload_model=True)
    with TestClient(app) as client:
        health = _model_status(client)
        assert health == {"status": "ok", "database": "ok", "model": "ready"}
        assert app.state.model_preload.seconds > 0
        cached = endpoint_client(local)
        assert isinstance(cached, LocalEndpointClient)
        # Loaded before any request: the routes get this very client.
        assert cached._service is not None
        r = client.post("/v1/predict", files={"image": ("a.jpg", ham_images[0], "image/jpeg")})
        assert r.status_code == 200 and r.json()["model_version"] == "test-random"
    cached.close()


def test_without_a_model_the_stack_still_serves(
    settings: Settings, tmp_path: Path, ham_images: list[bytes]
) -> None:
    empty = settings.model_copy(update={"model_path": tmp_path / "no-model"})
    app = create_app(empty, apply_migrations=False, preload_model=True)
    with TestClient(app) as client:
        r = client.get("/health")
        health = _model_status(client)
        assert r.status_code == 200 and health["model"] == "failed"
        assert "no usable model" in app.state.model_preload.error
        creds = {"email": "nomodel@example.com", "password": "correct horse battery"}
        assert client.post("/v1/auth/register", json=creds).status_code == 201
        r = client.post("/v1/predict", files={"image": ("a.jpg", ham_images[0], "image/jpeg")})
        assert r.status_code == 502 and r.json()["error"]["code"] == "model_unavailable"


def test_no_preload_with_a_remote_endpoint(settings: Settings) -> None:
    preload = ModelPreload()
    remote = settings.model_copy(update={"endpoint_mode": "sagemaker"})
    assert preload.start(remote) is None
    assert preload.status == "off"
