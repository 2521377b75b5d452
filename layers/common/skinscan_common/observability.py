"""Powertools Logger, Metrics and Tracer, set up once; secrets never reach the logs."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "skinscan")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SkinScan")

_SENSITIVE_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|signature|sig|policy|credential",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"']+")
_ARGON = re.compile(r"\$argon2id?\$[^\s\"']+")
_KV = re.compile(
    r"(?i)((?:password|refresh_token|access_token|token|secret|sig)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
)
REDACTED = "[REDACTED]"


def redact_text(text: str) -> str:
    """Mask JWTs, bearer credentials, password hashes and ``key=value`` secrets."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _ARGON.sub(REDACTED, text)
    return _KV.sub(r"\1" + REDACTED, text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with sensitive keys and secret-looking strings masked."""
    if key and _SENSITIVE_KEYS.search(key) and not isinstance(value, dict | list):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


class RedactingFilter(logging.Filter):
    """Scrubs the message, its arguments and ``extra`` fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        elif isinstance(record.msg, dict):
            record.msg = redact(record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(a) for a in args)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, redact(value, name))
        return True


def _build_logger() -> Logger:
    level = os.environ.get("SKINSCAN_LOG_LEVEL", os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
    log = Logger(service=SERVICE, level=level.upper())
    redactor = RedactingFilter()
    log.addFilter(redactor)
    for handler in log.handlers:
        handler.addFilter(redactor)
    return log


logger: Logger = _build_logger()
metrics: Metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer: Tracer = Tracer(service=SERVICE)


def flush_metrics() -> None:
    """Publish the metrics recorded so far (one CloudWatch EMF line on stdout), then forget them.

    Lambda entry points call this at the end of every invocation: Powertools only buffers
    ``add_metric`` calls, so without a flush the counts never reach CloudWatch.
    """
    if metrics.metric_set:
        metrics.flush_metrics()
        metrics.clear_metrics()  # also when POWERTOOLS_METRICS_DISABLED made the flush a no-op


def set_log_level(level: str) -> None:
    """Change the level at run time (``skinscan serve --log-level``)."""
    logger.setLevel(level.upper())


@contextlib.contextmanager
def logging_to(stream: Any) -> Iterator[None]:
    """Log lines go to ``stream`` meanwhile, then back where they went (a command run in
    process, as tests do, must not leave the logger on a stream that is then closed)."""
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    before = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, previous in zip(handlers, before, strict=True):
            handler.setStream(previous)
