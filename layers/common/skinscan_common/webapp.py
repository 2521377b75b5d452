"""Serve the web app (``web/``, plain static files) at ``/``: the local stack and, in AWS, the
``web`` function behind the same HTTP API as ``/v1`` (one origin, so no CORS and one CSP).

The app is installable: the manifest needs its own media type, the service worker must never
be cached by the browser's HTTP cache (so a new version is picked up at once) and may control
the whole origin. Every static answer carries a strict Content-Security-Policy: the app loads
nothing from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

#: What the static folder may serve; anything else (the icon script, stray files) is a 404.
SERVED_SUFFIXES = frozenset(
    {".html", ".js", ".css", ".webmanifest", ".png", ".svg", ".ico", ".txt", ".json"}
)

MEDIA_TYPES = {
    ".webmanifest": "application/manifest+json",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Photos and heatmaps: same-origin signed URLs locally, presigned S3 URLs in AWS,
        # and blob: for the photo the person just picked.
        "img-src 'self' blob: data: https:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(), microphone=()",
}


class WebAppFiles(StaticFiles):
    """StaticFiles with the headers an installable app needs."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        suffix = Path(path).suffix.lower()
        if suffix and suffix not in SERVED_SUFFIXES:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        served = Path(path).name or "index.html"
        served_suffix = Path(served).suffix.lower() or ".html"
        if served_suffix in MEDIA_TYPES and response.status_code == 200:
            response.headers["content-type"] = MEDIA_TYPES[served_suffix]
        if served == "sw.js":
            response.headers["Service-Worker-Allowed"] = "/"
        # The service worker keeps the offline copy; the HTTP cache must always revalidate,
        # so a deploy is seen on the next load (ETag/Last-Modified keep that cheap).
        response.headers["Cache-Control"] = "no-cache"
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_web(app: FastAPI, web_dir: Path) -> None:
    """Serve ``web_dir`` at ``/`` (mount it last: it answers every path no route took)."""
    if (web_dir / "index.html").is_file():
        app.mount("/", WebAppFiles(directory=web_dir, html=True), name="web")
