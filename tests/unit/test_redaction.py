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


ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
EMAIL = "bob.private@example.com"


def test_redact_text_masks_addresses_and_password_hashes() -> None:
    out = redact_text(f"[parameters: ('id-1', '{EMAIL}', '{ARGON}')] Key (email)=({EMAIL})")
    assert EMAIL not in out and ARGON not in out and "argon2" not in out
    assert "id-1" in out


def test_exception_text_is_redacted_in_every_field() -> None:
    """The traceback (``exception``), its notes and ``stack_trace`` come from ``exc_info``,
    which the filter never sees: a database error quotes its row, a validator its input."""
    buffer = io.StringIO()
    error = RuntimeError(f"INSERT INTO users [parameters: ('{EMAIL}', '{ARGON}')] token {JWT}")
    error.add_note(f"while registering {EMAIL}")
    with logging_to(buffer):
        try:
            raise error
        except RuntimeError:
            logger.exception("could not register")
    text = buffer.getvalue()
    line = json.loads(text.strip().splitlines()[-1])
    for secret in (EMAIL, ARGON, JWT, "argon2"):
        assert secret not in text, secret
    assert line["exception_name"] == "RuntimeError"
    assert "[REDACTED]" in line["exception"] and "INSERT INTO users" in line["exception"]
    assert line["stack_trace"]["value"].count("[REDACTED]") == 3
    assert line["exception_notes"] == ["while registering [REDACTED]"]
