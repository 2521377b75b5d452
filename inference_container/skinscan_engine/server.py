"""The inference container's HTTP server: the SageMaker contract on port 8080.

``GET /ping`` answers 200 only once the model is loaded and has answered one synthetic photo
(503 before), so the first real request does not pay the first forward pass's set-up.
``POST /invocations``:

* ``image/jpeg``, ``image/png`` or ``application/x-image`` body -> the result JSON. The heatmap
  PNGs are added as base64 (``heatmap_png_base64``, ``overlay_png_base64``) when the caller
  asks with ``X-Amzn-SageMaker-Custom-Attributes: heatmaps=base64`` (or ``?heatmaps=base64``).
* JSON ``{"bucket", "key", "prediction_id"}`` -> read the photo from the bucket, write the
  heatmap and overlay next to it, complete the prediction row, answer the result JSON.
* JSON ``{"bucket", "items": [{"key", "heatmap_key", "overlay_key"}, ...]}`` (a batch job's
  chunk, at most 256) -> score them together, write the PNGs where asked, answer
  ``{"results": [...]}`` (``skinscan_common.services.batch_scoring``).

Concurrent requests are micro-batched. Bad input gets a 4xx JSON error and the server keeps
serving. Run: ``python -m skinscan_engine.server`` (SageMaker passes ``serve``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from skinscan_common.api import install_middleware
from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine, session_scope
from skinscan_common.errors import AppError
from skinscan_common.observability import logger
from skinscan_common.services.batch_scoring import MAX_ITEMS, parse_items, score_objects
from skinscan_common.services.scoring import score_stored_object, sniff_image_type
from skinscan_common.storage import ObjectStore, build_object_store

from .preprocessing import ImageDecodeError
from .serving import HeatmapMode, ScoringService, decode_error_to_app_error

# application/x-image: SageMaker's generic image type; the bytes are sniffed whatever is named.
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
# A batch chunk: up to MAX_ITEMS items, each with three object keys of up to 1,024 bytes (JSON
# escaping aside); the functions' own 64 KB limit would refuse chunks with long keys.
MAX_JSON_BYTES = MAX_ITEMS * 4 * 1024
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"


class ObjectRequest(BaseModel):
    """Score a photo already in the bucket for a pending prediction."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=1, max_length=255)
    key: str = Field(min_length=1, max_length=1024)
    prediction_id: str = Field(min_length=1, max_length=64)


class ModelState:
    """The scoring service once loaded, or why loading failed."""

    def __init__(self) -> None:
        self.service: ScoringService | None = None
        self.error: str | None = None
        self.stores: dict[str, ObjectStore] = {}
        self.lock = threading.Lock()

    def require(self) -> ScoringService:
        if self.service is None:
            raise AppError("the model is not loaded yet", code="not_ready", status_code=503)
        return self.service


def store_for(settings: Settings, state: ModelState, bucket: str) -> ObjectStore:
    """The object store of ``bucket`` (S3 in AWS; the configured local store otherwise)."""
    with state.lock:
        store = state.stores.get(bucket)
        if store is None:
            if settings.storage_backend == "s3":
                from skinscan_common.storage.s3 import S3ObjectStore

                store = S3ObjectStore(
                    bucket, endpoint_url=settings.s3_endpoint_url, region=settings.aws_region
                )
            elif bucket == settings.bucket:
                store = build_object_store(settings)
            else:
                raise AppError(f"unknown bucket {bucket!r}", code="unknown_bucket", status_code=404)
            state.stores[bucket] = store
        return store


def heatmap_mode(request: Request) -> HeatmapMode:
    attrs = request.headers.get(CUSTOM_ATTRIBUTES, "")
    wanted = request.query_params.get("heatmaps") or ""
    for part in attrs.split(","):
        name, _, value = part.strip().partition("=")
        if name == "heatmaps":
            wanted = value
    return "base64" if wanted == "base64" else "none"


def create_app(
    load: Callable[[], ScoringService] | None = None,
    settings: Settings | None = None,
    background_load: bool = True,
) -> FastAPI:
    """The container app; ``load`` builds the scoring service (default: from settings)."""
    settings = settings or get_settings()
    state = ModelState()
    loader = load or (lambda: ScoringService.from_settings(settings))

    def _load() -> None:
        try:
            service = loader()
            try:
                # Ready only once warm: SageMaker routes traffic as soon as /ping says 200.
                seconds = service.warm_up()
            except Exception:
                service.close()
                raise
            state.service = service
            logger.info(
                "model loaded",
                extra={
                    "model_version": service.engine.version,
                    "warm_up_ms": round(seconds * 1000, 1),
                },
            )
        except Exception as exc:  # /ping keeps answering 503 and says why
            state.error = f"{type(exc).__name__}: {exc}"
            logger.exception("model failed to load")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if background_load:
            threading.Thread(target=_load, name="model-loader", daemon=True).start()
        else:
            _load()
        yield
        if state.service is not None:
            state.service.close()

    app = FastAPI(title="SkinScan inference", lifespan=lifespan)
    app.state.model = state
    install_middleware(app, settings, max_json_bytes=MAX_JSON_BYTES)

    @app.get("/ping")
    def ping() -> JSONResponse:
        if state.service is None:
            body = {"status": "loading" if state.error is None else "failed", "error": state.error}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "model_version": state.service.engine.version})

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        service = state.require()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type == "application/json":
            return JSONResponse(await run_in_threadpool(_score_object, service, body))
        if content_type in IMAGE_TYPES:
            if not body:
                raise AppError("The file is empty.", code="empty", status_code=422)
            if sniff_image_type(body) is None:
                raise AppError(
                    "the body is not a JPEG or PNG image", code="not_an_image", status_code=422
                )
            return JSONResponse(await _predict(service, body, heatmap_mode(request)))
        raise AppError(
            f"unsupported content type {content_type!r}: send image/jpeg, image/png, "
            "application/x-image or application/json",
            code="unsupported_media_type",
            status_code=415,
        )

    async def _predict(service: ScoringService, body: bytes, mode: HeatmapMode) -> dict[str, Any]:
        # Decode in a worker thread, then wait for the batch without holding a thread.
        try:
            prepared = await run_in_threadpool(service.engine.prepare, body)
        except ImageDecodeError as exc:
            raise decode_error_to_app_error(exc) from exc
        prediction = await asyncio.wrap_future(service.batcher.submit(prepared))
        out = prediction.as_dict(heatmaps=False)
        if mode == "base64":
            pngs = await run_in_threadpool(
                lambda: (prediction.heatmap_png(), prediction.overlay_png())
            )
            out["heatmap_png_base64"] = base64.b64encode(pngs[0]).decode()
            out["overlay_png_base64"] = base64.b64encode(pngs[1]).decode()
        return out

    def _score_object(service: ScoringService, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AppError("request body is not valid JSON", code="malformed_json") from exc
        if isinstance(data, dict) and "items" in data:  # a batch job's chunk
            bucket = data.get("bucket")
            if not isinstance(bucket, str) or not bucket:
                raise AppError("expected a bucket name", code="validation_error", status_code=422)
            store = store_for(settings, state, bucket)
            items = parse_items(data["items"])
            return {"results": score_objects(store, items, service.answer_many)}
        try:
            req = ObjectRequest.model_validate(data)
        except ValidationError as exc:
            raise AppError(
                'expected {"bucket", "key", "prediction_id"}',
                code="validation_error",
                status_code=422,
            ) from exc
        store = store_for(settings, state, req.bucket)
        with session_scope(get_engine(settings.database_url)) as session:
            outcome = score_stored_object(
                session,
                store,
                key=req.key,
                prediction_id=req.prediction_id,
                score=lambda data, _ct: service.answer(data, heatmaps="bytes"),
            )
            prediction_id = str(outcome.row.id)
        if outcome.error is not None:  # the failed row is committed; the caller learns why
            raise outcome.error
        return {"prediction_id": prediction_id, **(outcome.answer or {})}

    return app


def main() -> None:
    import uvicorn

    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    # One worker process: the engine batches across requests; more processes would each hold
    # a model copy and split the batches.
    uvicorn.run(
        create_app(),
        host=os.environ.get("SKINSCAN_BIND", "0.0.0.0"),
        port=port,
        workers=1,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
