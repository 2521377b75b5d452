"""Powertools Logger, Metrics and Tracer, set up once; secrets never reach the logs."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "skinscan")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SkinScan")

_SENSITIVE_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|signature|sig|policy|credential",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"']+")
_ARGON = re.compile(r"\$argon2id?\$[^\s\"']+")
# People's addresses: they reach the text of errors (a database error quoting a row, a validator
# quoting its input), and no log line needs one; ``user_id`` says who.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_KV = re.compile(
    r"(?i)((?:password|refresh_token|access_token|token|secret|sig)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
)
REDACTED = "[REDACTED]"


def redact_text(text: str) -> str:
    """Mask JWTs, bearer credentials, password hashes, e-mail addresses and ``key=value``
    secrets."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _ARGON.sub(REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
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


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON line, with the exception's text redacted as well.

    An exception's message carries data that the filter never sees (it is formatted from
    ``exc_info`` only here): a validator quotes its input, a driver error its statement. So the
    ``exception`` traceback, its ``exception_notes``, the ``stack_trace`` value and any object
    turned into text for JSON pass through :func:`redact_text`.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("json_default", lambda value: redact_text(str(value)))
        super().__init__(**kwargs)

    def serialize(self, log: dict[str, Any]) -> str:
        if isinstance(log.get("exception"), str):
            log["exception"] = redact_text(log["exception"])
        if log.get("exception_notes"):
            log["exception_notes"] = [redact_text(str(note)) for note in log["exception_notes"]]
        trace = log.get("stack_trace")
        if isinstance(trace, dict) and "value" in trace:
            log["stack_trace"] = {**trace, "value": redact_text(str(trace["value"]))}
        return super().serialize(log)


_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Keys every log line of the current request (task or thread) carries: a ContextVar, so that
# concurrent requests served by one process (uvicorn, the thread pool) never see each other's.
_context_keys: ContextVar[Mapping[str, Any]] = ContextVar("skinscan_log_keys", default=_EMPTY)


class ContextKeysFilter(logging.Filter):
    """Adds the keys of :func:`log_context` to each record (an explicit ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context_keys.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


@contextlib.contextmanager
def log_context(**keys: Any) -> Iterator[None]:
    """Every line logged meanwhile, in this task or thread, carries ``keys`` (a request's id)."""
    token = _context_keys.set(MappingProxyType({**_context_keys.get(), **keys}))
    try:
        yield
    finally:
        _context_keys.reset(token)


def _build_logger() -> Logger:
    level = os.environ.get("SKINSCAN_LOG_LEVEL", os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"))
    log = Logger(service=SERVICE, level=level.upper(), logger_formatter=RedactingFormatter())
    for log_filter in (ContextKeysFilter(), RedactingFilter()):  # keys first, then redaction
        log.addFilter(log_filter)
        for handler in log.handlers:
            handler.addFilter(log_filter)
    return log


logger: Logger = _build_logger()
metrics: Metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer: Tracer = Tracer(service=SERVICE)


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def with_lambda_context(
    correlation_id_path: str | None = None,
) -> Callable[[_Handler], _Handler]:
    """Powertools' ``logger.inject_lambda_context`` for a Lambda entry point: every line of an
    invocation carries ``function_request_id``, ``cold_start`` and, found in the event at
    ``correlation_id_path``, ``correlation_id`` (API Gateway's request id, as in its access log).

    A handler called without a context (tests, scripts) runs as it is, without those keys.
    """

    def decorate(handler: _Handler) -> _Handler:
        injected = logger.inject_lambda_context(
            handler, log_event=False, correlation_id_path=correlation_id_path
        )

        @functools.wraps(handler)
        def wrapper(event: Any, context: Any = None) -> Any:
            return (handler if context is None else injected)(event, context)

        return wrapper  # type: ignore[return-value]

    return decorate


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
