"""``skinscan serve`` as a real process: health, register, login, me over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import _free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKINSCAN_")}
    log = (data / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "skinscan", "serve", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = (data / "serve.log").read_text(errors="replace")
                pytest.fail(f"skinscan serve exited: {out[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("skinscan serve did not become healthy")
        assert (data / "skinscan.db").exists()
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_health_and_docs(server: str) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    assert httpx.get(f"{server}/docs").status_code == 200
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/v1/auth/register", "/v1/auth/me", "/v1/predictions"} <= set(paths)


def test_register_login_me(server: str) -> None:
    creds = {"email": "e2e@example.com", "password": "correct horse battery"}
    assert httpx.post(f"{server}/v1/auth/register", json=creds).status_code == 201
    login = httpx.post(f"{server}/v1/auth/login", json=creds)
    assert login.status_code == 200
    me = httpx.get(
        f"{server}/v1/auth/me",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert me.status_code == 200 and me.json()["email"] == "e2e@example.com"
