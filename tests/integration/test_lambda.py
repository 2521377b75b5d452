"""The Lambda handlers (Mangum, API Gateway HTTP API v2) answer like the ASGI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.apigw import call_handler, http_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _both(
    client: TestClient, module: Any, method: str, url: str, **kwargs: Any
) -> tuple[tuple[int, Any], tuple[int, Any]]:
    asgi = client.request(method, url, json=kwargs.get("json_body"), headers=kwargs.get("headers"))
    asgi_body = asgi.json() if asgi.content else None
    return (asgi.status_code, asgi_body), call_handler(
        module.handler, http_event(method, url, **kwargs)
    )


def test_auth_handler_matches_asgi(client: TestClient, function_apps: Any) -> None:
    auth = function_apps("auth")
    body = {"email": "ada@example.com", "password": "correct horse battery"}
    status, reg = call_handler(
        auth.handler, http_event("POST", "/v1/auth/register", json_body=body)
    )
    assert status == 201
    headers = {"authorization": f"Bearer {reg['tokens']['access_token']}"}

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/auth/me", {"headers": headers}),
        ("GET", "/v1/auth/me", {}),
        ("GET", "/v1/auth/me", {"headers": {"authorization": "Bearer nope"}}),
        ("POST", "/v1/auth/register", {"json_body": body}),
        ("POST", "/v1/auth/register", {"json_body": {"email": "x", "password": "y"}}),
        ("POST", "/v1/auth/login", {"json_body": {**body, "password": "wrong password"}}),
        ("POST", "/v1/auth/refresh", {"json_body": {"refresh_token": "unknown"}}),
        ("POST", "/v1/auth/logout", {"json_body": {"refresh_token": "unknown"}}),
    ]
    for method, url, kwargs in cases:
        asgi, lam = _both(client, auth, method, url, **kwargs)
        assert asgi == lam, (method, url)


def test_auth_handler_malformed_and_oversized(client: TestClient, function_apps: Any) -> None:
    auth = function_apps("auth")
    headers = {"content-type": "application/json"}
    malformed = call_handler(
        auth.handler, http_event("POST", "/v1/auth/login", body="{oops", headers=headers)
    )
    asgi = client.post("/v1/auth/login", content=b"{oops", headers=headers)
    assert malformed == (asgi.status_code, asgi.json()) and malformed[0] == 400
    big = json.dumps({"email": "a@b.io", "password": "x" * 100_000})
    status, answer = call_handler(
        auth.handler, http_event("POST", "/v1/auth/login", body=big, headers=headers)
    )
    assert status == 413 and answer["error"]["code"] == "payload_too_large"


def test_login_and_tokens_through_handler(client: TestClient, function_apps: Any) -> None:
    auth = function_apps("auth")
    body = {"email": "ada@example.com", "password": "correct horse battery"}
    assert client.post("/v1/auth/register", json=body).status_code == 201
    status, tokens = call_handler(
        auth.handler, http_event("POST", "/v1/auth/login", json_body=body)
    )
    assert status == 200
    # A token minted by the Lambda works on the local stack and vice versa.
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200


def test_history_handler_matches_asgi(
    client: TestClient, function_apps: Any, register: Any, make_prediction: Any
) -> None:
    history = function_apps("history")
    ada, bob = register("ada@example.com"), register("bob@example.com")
    row = make_prediction(ada["user"]["id"], "malignant")
    a = {"authorization": ada["headers"]["Authorization"]}
    b = {"authorization": bob["headers"]["Authorization"]}
    for method, url, headers in [
        ("GET", "/v1/predictions?limit=5&verdict=malignant", a),
        ("GET", "/v1/predictions", b),
        ("GET", f"/v1/predictions/{row.id}", b),
        ("DELETE", f"/v1/predictions/{row.id}", b),
        ("GET", "/v1/predictions/not-a-uuid", a),
    ]:
        asgi, lam = _both(client, history, method, url, headers=headers)
        assert asgi == lam, (method, url)
    status, view = call_handler(
        history.handler, http_event("GET", f"/v1/predictions/{row.id}", headers=a)
    )
    assert status == 200 and view["image_url"] and view["verdict"] == "malignant"
    status, _ = call_handler(
        history.handler, http_event("DELETE", f"/v1/predictions/{row.id}", headers=a)
    )
    assert status == 204


def _http_api_events() -> list[Path]:
    """Sample API Gateway HTTP API events (S3 and SQS samples have their own tests)."""
    return [
        p
        for p in sorted(EVENTS.glob("*/*.json"))
        if json.loads(p.read_text()).get("requestContext", {}).get("http")
    ]


@pytest.mark.parametrize("path", _http_api_events(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_events_are_handled(path: Path, function_apps: Any) -> None:
    module = function_apps(path.parent.name)
    status, body = call_handler(module.handler, json.loads(path.read_text()))
    assert status < 500, body
    assert body is None or isinstance(body, dict)


def test_handler_publishes_its_metrics_once_per_invocation(
    function_apps: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from skinscan_common.observability import metrics

    auth = function_apps("auth")
    body = {"email": "metrics@example.com", "password": "correct horse battery"}
    capsys.readouterr()
    status, _ = call_handler(auth.handler, http_event("POST", "/v1/auth/register", json_body=body))
    assert status == 201
    records = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    # One CloudWatch EMF record with the count, and nothing left buffered for the next call.
    assert len(records) == 1 and records[0]["AccountRegistered"] == [1.0]
    assert records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SkinScanTest"
    assert not metrics.metric_set
    status, _ = call_handler(auth.handler, http_event("POST", "/v1/auth/login", json_body=body))
    assert status == 200
    assert '"_aws"' not in capsys.readouterr().out
