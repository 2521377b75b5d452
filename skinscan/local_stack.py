"""The local stack: every function's router in one ASGI app, with embedded defaults.

To plug a function in, add its module to :data:`FUNCTION_ROUTERS`; the module must expose
``router`` (an ``APIRouter``). Modules that do not exist yet are skipped.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from skinscan.local_events import dispatch_upload
from skinscan.model_preload import ModelPreload
from skinscan_common import webapp
from skinscan_common.api import install_middleware
from skinscan_common.config import Settings, get_settings
from skinscan_common.db import get_engine, migrate
from skinscan_common.deps import object_store, settings_dep
from skinscan_common.errors import AppError, NotFoundError
from skinscan_common.observability import logger
from skinscan_common.services import housekeeping as chores
from skinscan_common.storage import (
    InvalidKeyError,
    LocalObjectStore,
    ObjectNotFoundError,
    SignatureError,
)
from skinscan_common.storage.local import OBJECTS_ROUTE, UPLOAD_ROUTE

# Order matters only for overlapping paths. Each entry: a module exposing ``router``.
FUNCTION_ROUTERS: list[str] = [
    "functions.auth.app",
    "functions.history.app",
    "functions.predict.app",
    "functions.uploads.app",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = REPO_ROOT / "web"

# Called with (app, key) after a browser upload through the signed local upload form:
# the local stand-in for S3 "object created" events.
UploadListener = Callable[[FastAPI, str], None]


def load_routers(modules: list[str] | None = None) -> list[tuple[str, APIRouter]]:
    """Import ``router`` from each module, skipping modules that do not exist yet."""
    routers = []
    for name in modules if modules is not None else FUNCTION_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                logger.debug("function not present, skipped", extra={"module": name})
                continue
            raise
        routers.append((name, module.router))
    return routers


def _local_store(app: FastAPI) -> LocalObjectStore:
    store = object_store(app.state.settings)
    if not isinstance(store, LocalObjectStore):
        raise NotFoundError("not found")
    return store


def _local_routes(app: FastAPI) -> APIRouter:
    # Only /health is part of the API; the signed object routes stay out of the schema. (A
    # router built with include_in_schema=False would hide /health too, whatever the route says.)
    router = APIRouter()

    @router.get(
        "/health",
        tags=["ops"],
        responses={503: {"description": "the database did not answer (`status`: `degraded`)"}},
    )
    def health() -> JSONResponse:
        """Liveness and database check: `status`, `database` (`ok` or `unreachable`) and
        `model` (`loading`, `ready`, `failed`, or `off` when not preloaded)."""
        try:
            with get_engine(app.state.settings.database_url).connect() as conn:
                conn.execute(text("SELECT 1"))
            database = "ok"
        except Exception:
            logger.exception("health: database unreachable")
            database = "unreachable"
        ok = database == "ok"
        # The model is reported, not required: sign-in, history and the web app work without it.
        body = {
            "status": "ok" if ok else "degraded",
            "database": database,
            "model": app.state.model_preload.status,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get(OBJECTS_ROUTE + "/{key:path}", include_in_schema=False)
    def local_object(
        key: str,
        expires: Annotated[int, Query()],
        sig: Annotated[str, Query(max_length=128)],
    ) -> Response:
        store = _local_store(app)
        try:
            store.verify_url(key, expires, sig)
            data = store.get(key)
        except (SignatureError, InvalidKeyError) as exc:
            raise AppError(str(exc), code="forbidden", status_code=403) from exc
        except ObjectNotFoundError as exc:
            raise NotFoundError("object not found") from exc
        return Response(
            data,
            media_type=store.content_type(key),
            headers={"Cache-Control": "private, max-age=60"},
        )

    @router.post(UPLOAD_ROUTE, status_code=204, include_in_schema=False)
    async def local_upload(
        key: Annotated[str, Form()],
        policy: Annotated[str, Form()],
        signature: Annotated[str, Form()],
        file: UploadFile,
    ) -> Response:
        store = _local_store(app)
        data = await file.read()
        content_type = file.content_type or "application/octet-stream"
        fields = {"key": key, "policy": policy, "signature": signature}
        try:
            target = store.verify_post(fields, content_type, len(data))
        except (SignatureError, InvalidKeyError) as exc:
            raise AppError(str(exc), code="forbidden", status_code=403) from exc
        store.put(target, data, content_type)
        for listener in app.state.upload_listeners:
            listener(app, target)
        return Response(status_code=204)

    return router


def create_app(
    settings: Settings | None = None,
    *,
    apply_migrations: bool = True,
    preload_model: bool = False,
    housekeeping: bool = False,
) -> FastAPI:
    """One ASGI app with every function, migrations applied, local objects served.

    ``preload_model``: on start-up, load and warm the model in the background
    (:mod:`skinscan.model_preload`) so that the first scan is as fast as the next.
    ``housekeeping``: run the hourly ``housekeeping`` function's chores at start-up and then
    every ``SKINSCAN_HOUSEKEEPING_INTERVAL_S`` (the AWS stack schedules the function instead).
    """
    settings = settings or get_settings()
    if apply_migrations:
        migrate(settings.database_url)
    preload = ModelPreload()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if preload_model:
            preload.start(settings)
        sweeper = asyncio.create_task(_housekeeping_loop(settings)) if housekeeping else None
        yield
        if sweeper is not None:
            sweeper.cancel()

    app = FastAPI(
        title="SkinScan (local stack)",
        version="1",
        description="Skin-lesion triage: every Lambda function of SkinScan in one app.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model_preload = preload
    app.state.upload_listeners: list[UploadListener] = [dispatch_upload]
    app.state.functions = []
    app.dependency_overrides[settings_dep] = lambda: settings
    app.include_router(_local_routes(app))
    for name, router in load_routers():
        app.include_router(router)
        app.state.functions.append(name)
    install_middleware(app, settings)
    mount_web(app)
    logger.info(
        "local stack ready",
        extra={"functions": app.state.functions, "storage": settings.storage_backend},
    )
    return app


async def _housekeeping_loop(settings: Settings) -> None:
    """The ``housekeeping`` function's chores, now and every interval, off the event loop."""
    while True:
        try:
            store = object_store(settings)
            db = get_engine(settings.database_url)
            await asyncio.to_thread(chores.run, db, store, settings)
        except Exception:  # logged step by step; the next round tries again
            logger.warning("housekeeping did not finish; tried again later")
        if settings.housekeeping_interval_s <= 0:
            return
        await asyncio.sleep(settings.housekeeping_interval_s)


def mount_web(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Serve the web app's static files at ``/`` when it exists (mounted last)."""
    webapp.mount_web(app, web_dir)  # the PWA's media types, cache and security headers


def app_factory() -> Any:
    """``uvicorn --factory skinscan.local_stack:app_factory``: the app ``skinscan serve`` runs."""
    settings = get_settings()
    return create_app(settings, preload_model=settings.preload_model, housekeeping=True)
