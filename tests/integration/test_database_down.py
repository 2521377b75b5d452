"""A PostgreSQL server that refuses connections or never answers: a clear 503, no hang."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skinscan.local_stack import create_app
from skinscan_common.config import Settings
from skinscan_common.db import engine as db_engine
from skinscan_common.deps import reset_caches
from tests.conftest import TEST_JWT_SECRET
from tests.support.net import free_port

CREDS = {"email": "down@example.com", "password": "correct horse battery"}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung or firewalled host)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _client(port: int, tmp_path: Path) -> TestClient:
    settings = Settings(
        database_url=f"postgresql://skinscan@127.0.0.1:{port}/skinscan",
        data_dir=tmp_path,
        jwt_secret=TEST_JWT_SECRET,
    )
    return TestClient(create_app(settings, apply_migrations=False))


def _answer_within(fn: Any, limit_s: float = 60) -> Any:
    """``fn()``'s result; fails if it is still waiting after ``limit_s`` (a hang, not a timing)."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(limit_s)
    assert box, f"no answer after {limit_s} s: the request hangs on the database"
    return box[0]


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    reset_caches()
    db_engine.dispose_engines()


def test_refused_connection_is_a_503_to_retry(tmp_path: Path) -> None:
    with _client(free_port(), tmp_path) as client:
        r = client.post("/v1/auth/register", json=CREDS)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "database_unavailable"
        assert r.headers["Retry-After"] == "5"
        login = client.post("/v1/auth/login", json=CREDS)
        assert login.status_code == 503
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["database"] == "unreachable"


def test_silent_server_times_out_into_a_503(
    silent_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "PG_SOCKET_TIMEOUT_S", 1.0)  # 10 s in service
    with _client(silent_server, tmp_path) as client:
        health = _answer_within(lambda: client.get("/health"))
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        r = _answer_within(lambda: client.post("/v1/auth/login", json=CREDS))
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.json()["error"]["code"] in ("database_unavailable", "service_unavailable")
