"""The ``web`` Lambda: the installable app from the API's own origin, as API Gateway calls it."""

from __future__ import annotations

import base64

import pytest

from functions.web import app as web_fn
from tests.support.apigw import http_event

WEB = web_fn.STATIC_DIR


def _get(path: str) -> tuple[int, dict[str, str], bytes]:
    response = web_fn.handler(http_event("GET", path), None)
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return response["statusCode"], response["headers"], raw


def test_the_bundled_files_are_the_web_app() -> None:
    assert (WEB / "index.html").read_bytes() == (
        WEB.parent.parent.parent / "web/index.html"
    ).read_bytes()


@pytest.mark.parametrize(
    ("path", "media_type", "source"),
    [
        ("/", "text/html", "index.html"),
        ("/sw.js", "text/javascript", "sw.js"),
        ("/manifest.webmanifest", "application/manifest+json", "manifest.webmanifest"),
        ("/icons/icon-192.png", "image/png", "icons/icon-192.png"),
    ],
)
def test_files_come_byte_for_byte_with_the_app_s_headers(
    path: str, media_type: str, source: str
) -> None:
    status, headers, body = _get(path)
    assert status == 200
    assert headers["content-type"].startswith(media_type)
    assert body == (WEB / source).read_bytes()  # binary files survive the base64 trip
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/make_icons.py", "/nothing-here.js", "/../app.py"])
def test_anything_else_is_a_404(path: str) -> None:
    status, _headers, _body = _get(path)
    assert status == 404
