"""Log lines: per-request keys, Lambda invocation keys, and one line per batch of failures."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest

from skinscan.commands.invoke import LambdaContext
from skinscan_common.observability import log_context, logger, logging_to, with_lambda_context
from skinscan_common.services import batch_scoring
from tests.support.batch_answers import done_answer
from tests.support.logs import (  # noqa: F401 (forget_invocation_keys: a fixture)
    LAMBDA_KEYS,
    forget_invocation_keys,
    lines,
)

pytestmark = pytest.mark.usefixtures("forget_invocation_keys")


def test_log_context_keys_are_on_every_line_of_their_context_only() -> None:
    buffer = io.StringIO()
    seen: dict[str, list[Any]] = {}

    def request(request_id: str) -> None:
        with log_context(request_id=request_id):
            for n in range(20):
                logger.info("step", extra={"who": request_id, "n": n})

    with logging_to(buffer):
        threads = [threading.Thread(target=request, args=(f"req-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.info("after")
        with log_context(request_id="outer"):
            logger.info("explicit", extra={"request_id": "given"})  # an explicit extra wins
    for line in lines(buffer):
        seen.setdefault(line["message"], []).append(line)
    assert len(seen["step"]) == 80
    assert all(line["request_id"] == line["who"] for line in seen["step"])
    assert "request_id" not in seen["after"][0]
    assert seen["explicit"][0]["request_id"] == "given"


def test_a_lambda_entry_point_logs_its_invocation_and_correlation_id() -> None:
    @with_lambda_context("requestContext.requestId")
    def handler(event: dict[str, Any], context: Any = None) -> str:
        logger.info("inside")
        return "ok"

    buffer = io.StringIO()
    event = {"requestContext": {"requestId": "APIGW-1"}}
    with logging_to(buffer):
        assert handler(event, LambdaContext("fn", aws_request_id="LAMBDA-1")) == "ok"
    (line,) = lines(buffer)
    assert line["function_request_id"] == "LAMBDA-1"
    assert line["correlation_id"] == "APIGW-1"
    assert line["function_name"] == "fn" and "cold_start" in line
    logger.remove_keys(LAMBDA_KEYS)
    buffer = io.StringIO()
    with logging_to(buffer):
        assert handler(event) == "ok"  # called directly (tests, scripts): no context to log
    (line,) = lines(buffer)
    assert "function_request_id" not in line


def test_the_authorizer_logs_with_the_gateway_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.authorizer import app as authorizer

    event = {
        "type": "REQUEST",
        "headers": {"authorization": "Bearer not-a-token"},
        "requestContext": {"requestId": "APIGW-AUTH-1", "http": {"method": "GET"}},
    }
    buffer = io.StringIO()
    with logging_to(buffer):
        result = authorizer.handler(event, LambdaContext("authorizer", aws_request_id="L-AUTH"))
    assert result == {"isAuthorized": False}
    (line,) = [line for line in lines(buffer) if line["message"] == "token refused"]
    assert line["correlation_id"] == "APIGW-AUTH-1"
    assert line["function_request_id"] == "L-AUTH"
    assert "not-a-token" not in buffer.getvalue()


def _answer(key: str) -> dict[str, Any]:
    """A scored image with both PNGs, as the endpoint answers it."""
    return done_answer(
        key,
        probabilities={"nv": 0.9, "mel": 0.1},
        heatmap_png=b"\x89PNG heat",
        overlay_png=b"\x89PNG over",
    )


class _RefusingStore:
    """Reads work; every write fails, as when S3 throttles (SlowDown) or is down."""

    def __init__(self) -> None:
        self.puts = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes:
        return b"\xff\xd8\xff photo"

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        with self.lock:
            self.puts += 1
        raise ConnectionError("S3 SlowDown: please reduce your request rate")


def test_unwritten_heatmaps_of_a_call_are_one_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [batch_scoring.output_keys("batch/j1/heatmaps/", f"img{i}.jpg") for i in range(40)]

    def score_many(images: list[bytes]) -> list[dict[str, Any]]:
        return [_answer(f"img{i}") for i in range(len(images))]

    store = _RefusingStore()
    buffer = io.StringIO()
    with logging_to(buffer):
        out = batch_scoring.score_objects(store, items, score_many, workers=4)
    assert store.puts == 80
    assert [row["status"] for row in out] == ["done"] * 40  # the verdicts stand
    assert all(row["heatmap_key"] is None and row["overlay_key"] is None for row in out)
    (line,) = lines(buffer)
    assert line["level"] == "ERROR" and line["message"] == "batch heatmaps not written"
    assert line["failed"] == 80
    assert len(line["targets"]) == batch_scoring.LOGGED_FAILURES
    assert line["targets"][0] == items[0]["heatmap_key"]
    assert line["error_types"] == ["ConnectionError"]
    assert buffer.getvalue().count("Traceback") == 1
    assert "SlowDown" in line["exception"]


def test_a_call_whose_heatmaps_are_written_logs_nothing() -> None:
    class Store:
        def get(self, key: str) -> bytes:
            return b"\xff\xd8\xff photo"

        def put(self, key: str, data: bytes, content_type: str = "") -> None:
            pass

    items = [batch_scoring.output_keys("batch/j1/heatmaps/", "a.jpg")]
    buffer = io.StringIO()
    with logging_to(buffer):
        out = batch_scoring.score_objects(Store(), items, lambda images: [_answer("a")])
    assert out[0]["heatmap_key"] == items[0]["heatmap_key"]
    assert buffer.getvalue() == ""
