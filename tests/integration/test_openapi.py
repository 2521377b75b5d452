"""The OpenAPI schema lists the error answers every route can give, not only its own."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from skinscan.local_stack import create_app
from skinscan_common.api import COMMON_ERROR_RESPONSES, create_function_app
from skinscan_common.config import Settings

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


def _schema(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _error_schema(responses: dict[str, Any], code: int) -> dict[str, Any]:
    assert str(code) in responses, f"{code} not listed: {sorted(responses)}"
    return responses[str(code)]["content"]["application/json"]["schema"]


@pytest.fixture(scope="module")
def local_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), jwt_secret="k" * 40)
    return _schema(create_app(settings))


def test_function_app_lists_the_common_errors() -> None:
    """``functions/auth``'s own app, as Lambda runs it (create_function_app)."""
    schema = _schema(importlib.import_module("functions.auth.app").app)
    register = schema["paths"]["/v1/auth/register"]["post"]["responses"]
    for code in (400, 413, 503):
        assert _error_schema(register, code) == ERROR_BODY
    assert "malformed_json" in register["400"]["description"]
    assert "payload_too_large" in register["413"]["description"]
    assert "database_unavailable" in register["503"]["description"]
    # The route's own answers are kept as they were.
    assert "RegisterResponse" in register["201"]["content"]["application/json"]["schema"]["$ref"]
    assert _error_schema(register, 409) == ERROR_BODY
    assert {"ErrorBody", "ErrorDetail"} <= set(schema["components"]["schemas"])


def test_local_stack_lists_the_common_errors(local_schema: dict[str, Any]) -> None:
    register = local_schema["paths"]["/v1/auth/register"]["post"]["responses"]
    for code in (400, 413, 503):
        assert _error_schema(register, code) == ERROR_BODY
    error_body = local_schema["components"]["schemas"]["ErrorBody"]
    assert error_body["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}


def test_each_code_only_where_it_can_happen(local_schema: dict[str, Any]) -> None:
    """400 malformed_json needs a JSON body, 413 any body; 503 can happen everywhere."""
    paths = local_schema["paths"]
    history = paths["/v1/predictions"]["get"]["responses"]
    assert "400" not in history and "413" not in history
    assert _error_schema(history, 503) == ERROR_BODY
    predict = paths["/v1/predict"]["post"]["responses"]  # multipart: no JSON to be malformed
    assert "400" not in predict
    assert _error_schema(predict, 413) == ERROR_BODY
    assert _error_schema(predict, 503) == ERROR_BODY
    assert "model_busy" in predict["503"]["description"]
    for path, operations in paths.items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert "503" in operation["responses"], path
    assert "400" not in paths["/health"]["get"]["responses"]  # /health is not a /v1 route


def test_routes_added_after_the_middleware_are_listed_too() -> None:
    app = create_function_app("late", [])

    @app.post("/v1/late")
    def late(body: dict[str, int]) -> dict[str, int]:
        return body

    responses = _schema(app)["paths"]["/v1/late"]["post"]["responses"]
    assert {str(code) for code in COMMON_ERROR_RESPONSES} <= set(responses)


def test_the_documented_answers_are_the_real_ones(tmp_path: Path) -> None:
    """400 and 413 as the schema says: ErrorBody with the codes named in the descriptions."""
    settings = Settings(data_dir=tmp_path, jwt_secret="k" * 40, max_body_bytes=1024)
    with TestClient(create_app(settings)) as client:
        malformed = client.post(
            "/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
        )
        too_large = client.post("/v1/auth/register", json={"email": "x" * 2000, "password": "p"})
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
