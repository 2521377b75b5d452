"""Browser tests: `skinscan serve` in a subprocess, driven by Playwright in Debian's Chromium.

No browser is downloaded: Playwright talks to ``/usr/bin/chromium`` (``apt-get install
chromium``), or ``$SKINSCAN_CHROMIUM``. Without Playwright or Chromium these tests are skipped,
unless ``SKINSCAN_REQUIRE_BROWSER=1`` (CI), which makes that a failure.

The server runs with a 1-second access-token lifetime (plus the verifier's 5 s leeway), so
the app's refresh-on-401 path is exercised for real. It uses the trained model in ``models/``
when there is one, else a random model with a fitted "unknown" gate (tests.engine_fixtures).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.engine_fixtures import shipped_model_path
from tests.support.serve import running_serve

#: CI sets this so that a missing browser fails the run instead of skipping the tests.
REQUIRE_BROWSER = os.environ.get("SKINSCAN_REQUIRE_BROWSER") == "1"

try:
    from playwright import sync_api

    from tests.e2e.web_helpers import (
        ACCESS_TOKEN_TTL_S,
        CHROMIUM,
        CHROMIUM_ARGS,
        REPO,
        new_context,
    )
except ModuleNotFoundError as exc:  # the test modules skip themselves (importorskip)
    if exc.name is None or not exc.name.startswith("playwright") or REQUIRE_BROWSER:
        raise


def _warm_up(url: str, log: Path) -> None:
    """One guest prediction, so the model is loaded before any test's clock starts."""
    photo = sorted((REPO / "tests" / "fixtures" / "ham").glob("*.jpg"))[0]
    response = httpx2.post(
        f"{url}/v1/predict", files={"image": (photo.name, photo.read_bytes())}, timeout=300
    )
    if response.status_code != 200:
        pytest.fail(f"warm-up prediction failed: {response.text}\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def model_path(request: pytest.FixtureRequest) -> Path:
    """The shipped model, else the random test model."""
    return shipped_model_path() or request.getfixturevalue("random_model_dir")


@pytest.fixture(scope="session")
def web_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Base URL of a fresh `skinscan serve` (own data folder, SQLite, local objects)."""
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(missing)
        pytest.skip(missing)
    model_path: Path = request.getfixturevalue("model_path")
    data = tmp_path_factory.mktemp("web-stack")
    env = {
        **os.environ,
        "SKINSCAN_MODEL_PATH": str(model_path),
        "SKINSCAN_ACCESS_TOKEN_TTL_S": str(ACCESS_TOKEN_TTL_S),
        "SKINSCAN_JWT_SECRET": "e2e-secret-0123456789abcdef0123456789abcdef",
        "SKINSCAN_LOG_LEVEL": "WARNING",
        "SKINSCAN_DEVICE": "cpu",
        # Every browser test signs up from 127.0.0.1 on this one server.
        "SKINSCAN_REGISTER_MAX_PER_CLIENT": "10000",
    }
    env.pop("SKINSCAN_DATABASE_URL", None)
    env.pop("SKINSCAN_PUBLIC_BASE_URL", None)
    log = data / "serve.log"
    with running_serve(data / "data", env, log) as url:
        _warm_up(url, log)
        yield url


@pytest.fixture(scope="module")
def browser(web_server: str) -> Iterator[sync_api.Browser]:
    # Module scope: Playwright's sync API keeps an event loop running on this thread while it
    # is open, which would break every later test that runs a loop itself (Mangum handlers).
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: sync_api.Browser, web_server: str) -> Iterator[sync_api.Page]:
    """A fresh phone-sized tab (own storage), with console errors collected on ``page.errors``."""
    context = new_context(browser, web_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: sync_api.ConsoleMessage) -> None:
        # The browser logs every 4xx/5xx fetch; the API's 401s and 4xx are expected answers.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    page.on("console", console)
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture(scope="session")
def lesion_images() -> list[Path]:
    """Real HAM10000 photos (tests/fixtures/ham)."""
    paths = sorted((REPO / "tests" / "fixtures" / "ham").glob("*.jpg"))
    assert paths, "tests/fixtures/ham holds the HAM10000 test photos"
    return paths
