"""Fixtures: a database URL on PostgreSQL and SQLite, settings, apps, clients, S3 (moto)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before anything reads the environment: keep the tests away from ./.skinscan and AWS.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="skinscan-tests-"))
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ["SKINSCAN_DATA_DIR"] = str(_SESSION_DIR / "default")
os.environ["SKINSCAN_JWT_SECRET"] = "test-secret-0123456789abcdef0123456789abcdef"
os.environ.pop("SKINSCAN_DATABASE_URL", None)
os.environ.pop("SKINSCAN_STORAGE_BACKEND", None)
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "SkinScanTest",
}.items():
    os.environ[_name] = _value

import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import delete  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from skinscan_common.config import Settings, get_settings  # noqa: E402
from skinscan_common.db import Base, get_engine, migrate, session_factory  # noqa: E402
from skinscan_common.deps import reset_caches  # noqa: E402
from tests.engine_fixtures import engine, engine_fp32, ham_images, random_model_dir  # noqa: E402, F401
from tests.support import postgres  # noqa: E402

TEST_JWT_SECRET = os.environ["SKINSCAN_JWT_SECRET"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"skinscan test data: {_SESSION_DIR}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server (running on :5432, or a throwaway one started here)."""
    try:
        with postgres.server_url() as url:
            yield url
    except (postgres.PostgresUnavailableError, OSError) as exc:
        if os.environ.get("SKINSCAN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh, uniquely named database for this session, migrated, dropped at the end."""
    with postgres.fresh_database(pg_server) as url:
        migrate(url)
        yield url
        get_engine(url).dispose()


@pytest.fixture(scope="session")
def sqlite_database() -> str:
    """A migrated SQLite file for this session."""
    url = f"sqlite:///{(_SESSION_DIR / 'session.db').as_posix()}"
    migrate(url)
    return url


def _empty_tables(url: str) -> None:
    with session_factory(get_engine(url))() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        session.commit()


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database URL on each backend; tables are emptied after each test."""
    name = "pg_database" if request.param == "postgresql" else "sqlite_database"
    url: str = request.getfixturevalue(name)
    yield url
    _empty_tables(url)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings on that database, with a per-test data folder."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "data_dir": tmp_path / "data",
        "jwt_secret": TEST_JWT_SECRET,
        "public_base_url": "http://testserver",
        "login_max_failures": 3,
    }
    yield Settings(**values)
    reset_caches()


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with session_factory(get_engine(settings.database_url))() as s:
        yield s


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The local stack on the test database."""
    from skinscan.local_stack import create_app

    return create_app(settings, apply_migrations=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def function_apps(settings: Settings) -> Iterator[Callable[[str], Any]]:
    """``load("auth")`` -> the function module, its app pointed at the test settings."""
    import importlib

    from skinscan_common.deps import settings_dep

    touched: list[FastAPI] = []

    def load(name: str) -> Any:
        module = importlib.import_module(f"functions.{name}.app")
        module.app.dependency_overrides[settings_dep] = lambda: settings
        touched.append(module.app)
        return module

    yield load
    for fn_app in touched:
        fn_app.dependency_overrides.clear()


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def register(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Register an account; returns ``{"user":..., "tokens":..., "headers":...}``."""

    def _register(email: str = "ada@example.com", password: str = "correct horse battery") -> dict:
        response = client.post("/v1/auth/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        body = response.json()
        body["headers"] = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
        body["password"] = password
        return body

    return _register
