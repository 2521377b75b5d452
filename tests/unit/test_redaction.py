"""Secrets never reach the logs."""

from __future__ import annotations

import io
import json

from skinscan_common.observability import logger, logging_to, redact, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def test_redact_text() -> None:
    text = f"Authorization: Bearer abc123 token={JWT} password=hunter22 refresh_token: zzz"
    out = redact_text(text)
    for secret in ("abc123", JWT, "hunter22", "zzz"):
        assert secret not in out


def test_redact_structures() -> None:
    out = redact({"password": "p", "nested": {"refresh_token": "r"}, "ok": 1, "l": [JWT]})
    assert out == {
        "password": "[REDACTED]",
        "nested": {"refresh_token": "[REDACTED]"},
        "ok": 1,
        "l": ["[REDACTED]"],
    }


def test_logger_output_is_redacted() -> None:
    buffer = io.StringIO()
    with logging_to(buffer):
        logger.info("login %s", f"Bearer {JWT}", extra={"password": "hunter22", "user": "u1"})
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert "hunter22" not in buffer.getvalue() and JWT not in buffer.getvalue()
    assert line["user"] == "u1"
