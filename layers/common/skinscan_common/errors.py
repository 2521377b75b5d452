"""Uniform JSON errors, and the request body size limit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skinscan_common.observability import logger

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


class AppError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.headers = headers


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class UnauthorizedError(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "not authenticated", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class TooManyRequestsError(AppError):
    status_code = 429
    code = "too_many_requests"


class PayloadTooLargeError(AppError):
    status_code = 413
    code = "payload_too_large"


#: Seconds a client is asked to wait before trying again when a service SkinScan uses is down.
RETRY_AFTER_S = 5


class StorageUnavailableError(AppError):
    """The object store did not answer, or answered that it is busy or failing (S3 unreachable,
    timed out, 5xx, ``SlowDown``): 503 with Retry-After, as for the database, since trying again
    shortly can succeed. The store's own error is the ``__cause__``."""

    status_code = 503
    code = "storage_unavailable"

    def __init__(
        self,
        message: str = "photo storage is unavailable right now; please try again shortly",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(RETRY_AFTER_S)})
        super().__init__(message, **kwargs)


def error_response(
    status_code: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """The one error shape: ``{"error": {"code", "message"[, "details"]}}``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status_code, headers=headers)


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            reason = ctx.get("error") or "syntax error"
            return error_response(
                400, "malformed_json", f"request body is not valid JSON: {reason}"
            )
    details = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
            "message": str(err.get("msg", "invalid")),
        }
        for err in errors
    ]
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"invalid request: {first['field']}: {first['message']}"
    return error_response(422, "validation_error", message, details=details)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer in the uniform JSON shape."""

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StorageUnavailableError)
    async def _storage_unavailable(_request: Request, exc: StorageUnavailableError) -> JSONResponse:
        # The answer names no cause; the log keeps the store's own error for operators.
        cause = exc.__cause__ or exc
        logger.exception(
            "the object store did not answer", extra={"error_type": type(cause).__name__}
        )
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    # Refused, unreachable, timed out or locked: trying again shortly can succeed, so 503 with
    # Retry-After (the web app then says "try again"), not an internal error. Socket failures
    # the driver lets through unwrapped (pg8000 times out while connecting with a bare
    # TimeoutError) get the same answer under a more general code.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(ConnectionError)
    async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
        database = isinstance(exc, DBAPIError)
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        logger.exception("a service did not answer", extra={"error_type": type(cause).__name__})
        return error_response(
            503,
            "database_unavailable" if database else "service_unavailable",
            "the database is unavailable right now; please try again shortly"
            if database
            else "a service SkinScan depends on did not answer; please try again shortly",
            {"Retry-After": str(RETRY_AFTER_S)},
        )

    # Any other exception is answered (once logged, 500 internal_error, with its request id) by
    # api.RequestLogMiddleware: an exception handler here would let Starlette's outer error
    # middleware log it a second time and re-raise it to the server.


# Bodies that carry a photo (a form with one, or the photo itself, as SageMaker clients send it).
PHOTO_CONTENT_TYPES = ("multipart/", "image/", "application/x-image")


class BodySizeLimitMiddleware:
    """413 for bodies over the limit: ``max_upload_bytes`` for multipart, else ``max_json``.

    Checks ``Content-Length`` first, then counts what is actually received.
    """

    def __init__(self, app: ASGIApp, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "").lower()
        multipart = content_type.startswith(PHOTO_CONTENT_TYPES)
        # Multipart forms carry some overhead around the file.
        limit = self.max_upload_bytes + 64 * 1024 if multipart else self.max_json_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_too_large(send, limit)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await _send_too_large(send, limit)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` so FastAPI turns it into the uniform 413 answer."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


async def _send_too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body is larger than the limit of {limit} bytes",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
