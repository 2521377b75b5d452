"""Build a function's FastAPI app the same way everywhere: errors, limits, request logs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skinscan_common.config import Settings, get_settings
from skinscan_common.errors import BodySizeLimitMiddleware, error_response, install_error_handlers
from skinscan_common.observability import (
    flush_metrics,
    log_context,
    logger,
    tracer,
    with_lambda_context,
)
from skinscan_common.schemas import ErrorBody

#: Error answers any ``/v1`` route can give, whatever the route: the shared middleware and
#: error handlers give them, not the route. Each is listed in the OpenAPI schema by
#: :func:`document_common_errors` where it applies (400 with a JSON body, 413 with any body).
COMMON_ERROR_RESPONSES: dict[int, str] = {
    400: "`malformed_json`: the request body is not valid JSON.",
    413: (
        "`payload_too_large`: the request body is over the size limit (a route that takes a "
        "photo also answers `too_large` or `too_many_pixels` for one too large)."
    ),
    503: (
        "`database_unavailable` (the database refused or did not answer within 10 s), "
        "`storage_unavailable` (the object store did not answer) or `service_unavailable` "
        "(another service SkinScan uses did not answer); a route that scores "
        "photos also answers `model_busy`. Sent with `Retry-After`: try again shortly."
    ),
}
_API_PREFIX = "/v1/"
_METHODS = ("get", "put", "post", "delete", "patch")


#: Paths polled by health checks (SageMaker calls ``/ping`` every few seconds): their request
#: lines are logged at DEBUG, so they do not drown the requests people make.
QUIET_PATHS = frozenset({"/ping", "/health"})


class RequestLogMiddleware:
    """One structured log line per request: method, route path, status, duration (no query).

    Every line logged while the request runs carries its ``request_id``, which the answer also
    carries as ``X-Request-Id``. An exception nothing else handled is logged here, once, and
    answered with the uniform JSON 500: left to Starlette's outermost ``ServerErrorMiddleware``,
    it would be answered without the request id and re-raised to the server (Mangum, uvicorn),
    which logs it a second time as plain, unredacted text.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        context = scope.get("aws.context")
        request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
                if started:
                    raise  # half an answer is out: only the server can end the connection
                answer = error_response(500, "internal_error", "internal error")
                await answer(scope, receive, send_wrapper)
            finally:
                self._log(scope, status, start)

    @staticmethod
    def _log(scope: Scope, status: int, start: float) -> None:
        path = scope.get("path", "")
        if path.startswith("/local-objects"):
            return
        log = logger.debug if path in QUIET_PATHS else logger.info
        log(
            "request",
            extra={
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 1),
            },
        )


class ApiAnswerHeadersMiddleware:
    """``/v1`` answers carry tokens, people's results and presigned URLs: no cache may keep
    them (``Cache-Control: no-store``, as RFC 6749 asks of token answers), and browsers must
    not guess their type. A route that sets its own Cache-Control keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


def install_middleware(
    app: FastAPI, settings: Settings | None = None, max_json_bytes: int | None = None
) -> None:
    """Uniform errors, body size limits and request logging on ``app``.

    ``max_json_bytes`` (default ``settings.max_body_bytes``) bounds bodies that are not photos.
    """
    settings = settings or get_settings()
    install_error_handlers(app)
    document_common_errors(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_json_bytes=max_json_bytes or settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestLogMiddleware)
    # Outermost (the last added), so that the 500 RequestLogMiddleware answers gets them too.
    app.add_middleware(ApiAnswerHeadersMiddleware)


def document_common_errors(app: FastAPI) -> None:
    """List :data:`COMMON_ERROR_RESPONSES` (body :class:`ErrorBody`) on every ``/v1``
    operation of ``app``'s OpenAPI schema, whenever its routes were added.

    400 goes where the request has a JSON body, 413 where it has a body at all, 503 everywhere.
    A route that declares one of these codes itself keeps its own entry (its description too,
    unless that is only the status's standard phrase).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_common_errors(build())
        return build()  # FastAPI keeps the schema once built: the same dict

    app.openapi = openapi  # type: ignore[method-assign]


def _add_common_errors(schema: dict[str, Any]) -> None:
    ref = "#/components/schemas/{model}"
    content = {"application/json": {"schema": {"$ref": ref.format(model=ErrorBody.__name__)}}}
    documented = False
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(_API_PREFIX):
            continue
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            codes = [503]
            if body:
                codes.insert(0, 413)
            if "application/json" in body:
                codes.insert(0, 400)
            responses = operation.setdefault("responses", {})
            for code in codes:
                entry = responses.setdefault(str(code), {})
                if entry.get("description") in (None, "", HTTPStatus(code).phrase):
                    entry["description"] = COMMON_ERROR_RESPONSES[code]
                entry.setdefault("content", content)
                documented = True
    if documented:  # the schemas the entries refer to (kept as they are where routes use them)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template=ref, mode="serialization")
        for name, definition in error_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(ErrorBody.__name__, error_schema)


def create_function_app(title: str, routers: Iterable[APIRouter], version: str = "1") -> FastAPI:
    """A Lambda function's app: its routers behind the shared middleware."""
    app = FastAPI(title=title, version=version)
    for router in routers:
        app.include_router(router)
    install_middleware(app)
    return app


def lambda_handler(app: FastAPI) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for ``app``: API Gateway events in, metrics flushed after each.

    Each log line carries the invocation (``function_request_id``, ``cold_start``) and API
    Gateway's own request id as ``correlation_id``, which the access log also records; the
    invocation is traced with X-Ray where tracing is on (``Tracing: Active`` in the template).
    """
    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum  # here: the inference container builds apps but needs no Mangum

    adapter = Mangum(app, lifespan="off")

    # capture_response=False: answers carry tokens and people's results, which traces must not.
    @tracer.capture_lambda_handler(capture_response=False)
    @with_lambda_context(correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return adapter(event, context)
        finally:
            flush_metrics()

    return handler
