"""``skinscan serve`` as a real process: health, register, login, me over HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.support.serve import running_serve


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # No SKINSCAN_* variables: the defaults alone must give a working stack.
    data = tmp_path_factory.mktemp("serve-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKINSCAN_")}
    with running_serve(data, env, data.parent / f"{data.name}.log") as base:
        assert (data / "skinscan.db").exists()
        yield base


def test_health_and_docs(server: str) -> None:
    assert httpx2.get(f"{server}/health").json()["status"] == "ok"
    assert httpx2.get(f"{server}/docs").status_code == 200
    paths = httpx2.get(f"{server}/openapi.json").json()["paths"]
    assert {"/v1/auth/register", "/v1/auth/me", "/v1/predictions"} <= set(paths)


def test_register_login_me(server: str) -> None:
    creds = {"email": "e2e@example.com", "password": "correct horse battery"}
    assert httpx2.post(f"{server}/v1/auth/register", json=creds).status_code == 201
    login = httpx2.post(f"{server}/v1/auth/login", json=creds)
    assert login.status_code == 200
    me = httpx2.get(
        f"{server}/v1/auth/me",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert me.status_code == 200 and me.json()["email"] == "e2e@example.com"


def test_the_shipped_model_is_loaded_at_start(server: str) -> None:
    # skinscan serve preloads by default: /health reports it, and no scan was needed for it.
    deadline = time.monotonic() + 120
    while (model := httpx2.get(f"{server}/health").json()["model"]) == "loading":
        assert time.monotonic() < deadline, "the model was still loading after 120 s"
        time.sleep(0.2)
    assert model == "ready"
