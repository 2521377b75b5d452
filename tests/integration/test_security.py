"""Acceptance security checks, through the HTTP API, on PostgreSQL and SQLite."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from skinscan_common.observability import logging_to
from tests.conftest import TEST_JWT_SECRET


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": user_id,
        "typ": "access",
        "iss": "skinscan",
        "iat": now,
        "exp": now + 600,
    } | extra


def _bad_tokens(user_id: str, refresh_token: str) -> dict[str, str]:
    key = TEST_JWT_SECRET.encode()
    return {
        "forged_signature": jwt.encode(_claims(user_id), b"not-the-key" * 4, algorithm="HS256"),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user_id))}.",
        "expired": jwt.encode(
            _claims(user_id, iat=int(time.time()) - 2000, exp=int(time.time()) - 1000),
            key,
            algorithm="HS256",
        ),
        "wrong_type": jwt.encode(_claims(user_id, typ="refresh"), key, algorithm="HS256"),
        "refresh_as_access": refresh_token,
        "garbage": "x.y.z",
    }


@pytest.mark.parametrize(
    "kind",
    ["forged_signature", "alg_none", "expired", "wrong_type", "refresh_as_access", "garbage"],
)
@pytest.mark.parametrize("route", ["/v1/auth/me", "/v1/predictions"])
def test_bad_access_tokens_get_401(
    client: TestClient, register: Any, kind: str, route: str
) -> None:
    reg = register()
    token = _bad_tokens(reg["user"]["id"], reg["tokens"]["refresh_token"])[kind]
    r = client.get(route, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (kind, r.text)
    assert r.json()["error"]["code"] == "invalid_token"
    # And a well-formed one with the right key works (the test forges correctly), in the
    # account's live sign-in session.
    sid = jwt.decode(reg["tokens"]["access_token"], options={"verify_signature": False})["sid"]
    good = jwt.encode(
        _claims(reg["user"]["id"], sid=sid), TEST_JWT_SECRET.encode(), algorithm="HS256"
    )
    assert client.get(route, headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_oversized_json_is_413(client: TestClient) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * 200_000})
    r = client.post("/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "larger than the limit" in r.json()["error"]["message"]


def test_oversized_body_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 8192

    r = client.post(
        "/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


@pytest.mark.parametrize("body", [b"{not json", b'{"email": "a@example.com",', b"\xff\xfe"])
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    r = client.post("/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_json"
    assert r.json()["error"]["message"].startswith("request body is not valid JSON")


def test_wrong_shape_is_422_with_field(client: TestClient) -> None:
    r = client.post("/v1/auth/login", json={"email": "a@example.com"})
    assert r.status_code == 422
    assert "password" in r.json()["error"]["message"]
    extra = client.post("/v1/auth/login", json={"email": "a@x.io", "password": "p", "admin": True})
    assert extra.status_code == 422


def _all_values(session: Session) -> str:
    meta = MetaData()
    meta.reflect(bind=session.get_bind())
    dump = []
    for table in meta.sorted_tables:
        for row in session.execute(select(table)):
            dump.extend(str(v) for v in row)
    return "\n".join(dump)


def test_no_secret_in_clear_in_database_or_logs(
    client: TestClient, register: Any, session: Session
) -> None:
    buffer = io.StringIO()
    with logging_to(buffer):
        reg = register("ada@example.com", "correct horse battery")
        client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "wrong pass 1"})
        login = client.post(
            "/v1/auth/login", json={"email": "ada@example.com", "password": reg["password"]}
        ).json()
        rotated = client.post(
            "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
        ).json()
        client.get("/v1/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
        client.post("/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})  # reuse
        client.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
        # A request that fails validation echoes nothing secret into the logs either.
        client.post("/v1/auth/register", json={"email": "bad", "password": "leaky password 9"})
    secrets = [
        reg["password"],
        "wrong pass 1",
        "leaky password 9",
        reg["tokens"]["access_token"],
        reg["tokens"]["refresh_token"],
        login["access_token"],
        login["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
    ]
    logs = buffer.getvalue()
    database = _all_values(session)
    assert "request" in logs and "login failed" in logs  # the capture did capture
    assert "$argon2id$" in database  # ...and the dump did dump
    for secret in secrets:
        assert secret not in logs, secret
        assert secret not in database, secret
