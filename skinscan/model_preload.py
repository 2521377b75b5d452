"""Load and warm the model in the background when the local stack starts.

The stack answers at once (sign-in, history, the web app) while the model loads and answers one
synthetic photo, so a user's first scan costs what every scan costs instead of the import of
torch, the weights and the first forward pass (about 4 s on two CPU cores). ``/health`` reports
where it stands.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from skinscan_common.config import Settings
from skinscan_common.deps import endpoint_client
from skinscan_common.observability import logger

PreloadStatus = Literal["off", "loading", "ready", "failed"]


@runtime_checkable
class WarmsUp(Protocol):
    """An endpoint client that can load its model ahead of the first request."""

    def warm_up(self) -> float: ...


@dataclass
class ModelPreload:
    """Where the background load stands: ``off`` until :meth:`start`, then the outcome.

    ``seconds``: how long loading and the first (synthetic) answer took, once ready.
    """

    status: PreloadStatus = "off"
    error: str | None = None
    seconds: float | None = None

    def start(self, settings: Settings) -> threading.Thread | None:
        """Warm the endpoint client the API will use, in a daemon thread (local mode only)."""
        if settings.endpoint_mode != "local":
            return None
        self.status = "loading"
        thread = threading.Thread(
            target=self._run, args=(settings,), name="model-preload", daemon=True
        )
        thread.start()
        return thread

    def _run(self, settings: Settings) -> None:
        start = time.perf_counter()
        try:
            # The same cached client the predict routes get, so they find it loaded.
            client = endpoint_client(settings)
            if not isinstance(client, WarmsUp):
                self.status = "off"
                return
            client.warm_up()
        except Exception as exc:  # the stack keeps serving; predictions report the cause
            self.error = f"{type(exc).__name__}: {exc}"
            self.status = "failed"
            logger.warning("model preload failed", extra={"error": self.error})
            return
        self.seconds = time.perf_counter() - start
        self.status = "ready"
        logger.info("model ready", extra={"load_and_warm_up_s": round(self.seconds, 2)})
