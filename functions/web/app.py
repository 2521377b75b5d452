"""Lambda ``web``: the web app (``web/``, bundled here as ``static``) at the API's own origin.

HTTP API sends ``GET /`` and every ``GET`` no ``/v1`` route takes here, so the installable app
and the API it calls share one origin, as in the local stack (no CORS, one strict CSP).
"""

from __future__ import annotations

from pathlib import Path

from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.webapp import mount_web

# A link to the repository's web/ folder; `sam build` copies the files it points at.
STATIC_DIR = Path(__file__).resolve().parent / "static"

app = create_function_app("SkinScan web app", [])
mount_web(app, STATIC_DIR)
handler = lambda_handler(app)
