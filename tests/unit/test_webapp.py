"""The web app's static mount: media types, caching and security headers."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient

from skinscan.local_stack import WEB_DIR
from skinscan_common.webapp import mount_web


def _client() -> TestClient:
    app = FastAPI()
    mount_web(app, WEB_DIR)
    return TestClient(app)


def test_index_is_served_with_a_strict_content_security_policy() -> None:
    response = _client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


def test_service_worker_is_never_cached_and_may_control_the_origin() -> None:
    response = _client().get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["service-worker-allowed"] == "/"


def test_manifest_media_type_and_icons_exist() -> None:
    client = _client()
    response = client.get("/manifest.webmanifest")
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    for icon in manifest["icons"]:
        got = client.get(icon["src"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"


def test_only_web_assets_are_served() -> None:
    client = _client()
    assert (WEB_DIR / "make_icons.py").is_file()
    assert client.get("/make_icons.py").status_code == 404
    assert client.get("/../pyproject.toml").status_code == 404


def test_shell_list_of_the_service_worker_names_real_files() -> None:
    sw = (WEB_DIR / "sw.js").read_text()
    shell = sw[sw.index("const SHELL = [") : sw.index("];", sw.index("const SHELL = ["))]
    paths = [line.strip().strip("',") for line in shell.splitlines()[1:] if line.strip()]
    assert "/js/app.js" in paths
    for path in paths:
        if path != "/":
            assert (WEB_DIR / path.lstrip("/")).is_file(), path
    # Every module of the app is in the shell, so it starts offline.
    modules = {f"/{p.relative_to(WEB_DIR).as_posix()}" for p in WEB_DIR.glob("js/**/*.js")}
    assert modules <= set(paths), modules - set(paths)
