"""What the functions log: one redacted line per error, every line tied to its request."""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from skinscan.commands.invoke import LambdaContext
from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.config import Settings
from skinscan_common.db import User, get_engine, session_factory
from skinscan_common.observability import logger, logging_to, set_log_level
from tests.support.apigw import http_event
from tests.support.logs import forget_invocation_keys, lines  # noqa: F401 (a fixture)

EMAIL = "bob.private@example.com"
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error"}}


pytestmark = pytest.mark.usefixtures("forget_invocation_keys")


@pytest.fixture
def app() -> FastAPI:
    """A function app (the shared middleware) with a route that logs and one that fails."""
    router = APIRouter()

    @router.get("/v1/work")
    def work() -> dict[str, str]:
        logger.info("working", extra={"step": 1})
        return {"ok": "yes"}

    @router.post("/v1/crash")
    def crash() -> None:
        logger.info("about to fail")
        raise RuntimeError(f"boom for {EMAIL}")

    return create_function_app("logging test", [router])


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every record at ERROR or above, whichever logger wrote it (ours, Mangum's, uvicorn's)."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unhandled_error_in_lambda_is_logged_once_and_answered_with_its_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    handler = lambda_handler(app)
    event = http_event("POST", "/v1/crash")
    event["requestContext"]["requestId"] = "APIGW-REQ-1"
    buffer = io.StringIO()
    with caplog.at_level(logging.INFO), logging_to(buffer):
        response = handler(event, LambdaContext("crash", aws_request_id="LAMBDA-REQ-1"))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == INTERNAL_ERROR
    assert response["headers"]["x-request-id"] == "LAMBDA-REQ-1"
    assert response["headers"]["cache-control"] == "no-store"
    # One error record in all (Mangum logs none: nothing reaches it), and it is ours.
    (record,) = _errors(caplog)
    assert record.name == logger.name
    logged = lines(buffer)
    (error,) = [line for line in logged if "exception" in line]
    assert error["message"] == "unhandled error" and error["exception_name"] == "RuntimeError"
    assert EMAIL not in buffer.getvalue()
    for line in logged:  # each line of the request is tied to it, and to API Gateway's
        assert line["request_id"] == "LAMBDA-REQ-1", line
        assert line["function_request_id"] == "LAMBDA-REQ-1", line
        assert line["correlation_id"] == "APIGW-REQ-1", line
    assert [line["message"] for line in logged] == ["about to fail", "unhandled error", "request"]
    assert logged[-1]["status"] == 500


def test_an_unhandled_error_is_one_log_record_and_a_json_500(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = io.StringIO()
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level(logging.INFO),
        logging_to(buffer),
    ):
        response = client.post("/v1/crash")
        assert client.get("/v1/work").status_code == 200  # and the app keeps serving
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    request_id = response.headers["x-request-id"]
    assert request_id
    assert len(_errors(caplog)) == 1
    crash = [line for line in lines(buffer) if line.get("request_id") == request_id]
    assert [line["message"] for line in crash] == ["about to fail", "unhandled error", "request"]


def test_every_line_of_a_request_carries_its_request_id(app: FastAPI) -> None:
    buffer = io.StringIO()
    with TestClient(app) as client, logging_to(buffer):
        first = client.get("/v1/work")
        second = client.get("/v1/work")
        logger.info("between requests")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    logged = lines(buffer)
    working = [line for line in logged if line["message"] == "working"]
    assert [line["request_id"] for line in working] == ids
    requests = [line for line in logged if line["message"] == "request"]
    assert [line["request_id"] for line in requests] == ids
    (between,) = [line for line in logged if line["message"] == "between requests"]
    assert "request_id" not in between


def test_a_lambda_request_logs_its_invocation_and_gateway_ids(app: FastAPI) -> None:
    handler = lambda_handler(app)
    event = http_event("GET", "/v1/work")
    event["requestContext"]["requestId"] = "APIGW-REQ-2"
    buffer = io.StringIO()
    with logging_to(buffer):
        response = handler(event, LambdaContext("work", aws_request_id="LAMBDA-REQ-2"))
    assert response["statusCode"] == 200
    (working,) = [line for line in lines(buffer) if line["message"] == "working"]
    assert working["request_id"] == "LAMBDA-REQ-2"
    assert working["function_request_id"] == "LAMBDA-REQ-2"
    assert working["correlation_id"] == "APIGW-REQ-2"
    assert "cold_start" in working


def test_database_errors_quote_no_parameters(db_url: str) -> None:
    """A failed INSERT INTO users names the statement, never the address or the hash."""
    sessions = session_factory(get_engine(db_url))
    with sessions() as session:
        session.add(User(email=EMAIL, password_hash=ARGON))
        session.commit()
    buffer = io.StringIO()
    with sessions() as session, logging_to(buffer):
        session.add(User(id=uuid.uuid4(), email=EMAIL, password_hash=ARGON))
        with pytest.raises(IntegrityError) as raised:
            session.commit()
        logger.error("could not register", exc_info=raised.value)  # as a handler logs it
    text = str(raised.value)
    assert "INSERT INTO users" in text
    assert "hide_parameters=True" in text
    assert ARGON not in text and "argon2" not in text
    # The driver's own message may still quote the row (PostgreSQL: "Key (email)=(...)"):
    # the log line masks it.
    assert EMAIL not in buffer.getvalue() and "argon2" not in buffer.getvalue()
    assert "IntegrityError" in buffer.getvalue()


def test_the_migrate_function_logs_its_invocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.migrate.app import handler
    from skinscan_common.config import get_settings

    monkeypatch.setenv("SKINSCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'migrate.db'}")
    get_settings.cache_clear()
    buffer = io.StringIO()
    try:
        with logging_to(buffer):
            result = handler({}, LambdaContext("migrate", aws_request_id="LAMBDA-MIGRATE"))
    finally:
        get_settings.cache_clear()
    assert result["status"] == "ok"
    (line,) = [line for line in lines(buffer) if line["message"] == "alembic upgrade"]
    assert line["function_request_id"] == "LAMBDA-MIGRATE"


def test_health_checks_are_not_logged_at_info(tmp_path: Path) -> None:
    """SageMaker polls /ping every few seconds: its request lines are DEBUG, others INFO."""
    from skinscan_engine.server import create_app

    def load() -> Any:
        raise RuntimeError("no model here")

    settings = Settings(data_dir=tmp_path / "data")
    buffer = io.StringIO()
    with logging_to(buffer):
        app = create_app(load=load, settings=settings, background_load=False)
        with TestClient(app) as client:
            for _ in range(5):
                assert client.get("/ping").status_code == 503
            client.post("/invocations", content=b"x", headers={"content-type": "image/jpeg"})
    requests = [line for line in lines(buffer) if line["message"] == "request"]
    assert [line["path"] for line in requests] == ["/invocations"]
    buffer = io.StringIO()
    set_log_level("DEBUG")
    try:
        with logging_to(buffer), TestClient(app) as client:
            client.get("/ping")
    finally:
        set_log_level("INFO")
    pings = [line for line in lines(buffer) if line.get("path") == "/ping"]
    assert [line["level"] for line in pings] == ["DEBUG"]
