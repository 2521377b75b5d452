"""The engine behind a micro-batcher, and the two things servers do with it.

Shared by the in-process endpoint client (local stack) and the SageMaker container, so both
answer the same JSON and complete stored predictions the same way. Images are decoded in the
caller's thread (Pillow releases the GIL, so decoding runs in parallel); only the forward pass
goes through the batcher.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageDraw

from skinscan_common.config import Settings
from skinscan_common.errors import AppError, PayloadTooLargeError

from .batching import MicroBatcher
from .engine import Engine, EngineConfig, Prediction, Prepared
from .preprocessing import ImageDecodeError

HeatmapMode = Literal["none", "bytes", "base64"]
_TOO_LARGE = {"too_large", "too_many_pixels"}


def decode_error_to_app_error(exc: ImageDecodeError) -> AppError:
    """413 for oversized input, 422 for anything unreadable; the message is safe to show."""
    if exc.code in _TOO_LARGE:
        return PayloadTooLargeError(exc.message, code=exc.code)
    return AppError(exc.message, code=exc.code, status_code=422)


@dataclass(frozen=True)
class BatchSettings:
    """Micro-batching knobs: ``SKINSCAN_BATCH_MAX_SIZE``, ``SKINSCAN_BATCH_MAX_WAIT_MS``."""

    max_batch_size: int = 16
    max_wait_ms: float = 5.0

    @classmethod
    def from_env(cls) -> BatchSettings:
        return cls(
            max_batch_size=int(os.environ.get("SKINSCAN_BATCH_MAX_SIZE", cls.max_batch_size)),
            max_wait_ms=float(os.environ.get("SKINSCAN_BATCH_MAX_WAIT_MS", cls.max_wait_ms)),
        )


class ScoringService:
    """An :class:`Engine` fed by a :class:`MicroBatcher` (``max_batch_size=1``: no batching)."""

    def __init__(self, engine: Engine, batching: BatchSettings | None = None) -> None:
        self.engine = engine
        self.batching = batching or BatchSettings.from_env()
        self.batcher: MicroBatcher[Prepared, Prediction] = MicroBatcher(
            engine.predict_prepared,
            max_batch_size=self.batching.max_batch_size,
            max_wait_ms=self.batching.max_wait_ms,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **config: Any) -> ScoringService:
        engine_config = EngineConfig.from_env(device=settings.device, **config)
        return cls(Engine.from_path(settings.model_path, engine_config))

    def predict(self, image: bytes) -> Prediction:
        """One image through the batcher; bad input raises :class:`AppError` (4xx)."""
        try:
            prepared = self.engine.prepare(image)
        except ImageDecodeError as exc:
            raise decode_error_to_app_error(exc) from exc
        return self.batcher(prepared)

    def answer(self, image: bytes, heatmaps: HeatmapMode = "bytes") -> dict[str, Any]:
        """The result dict, with the PNGs as bytes, base64 text or left out."""
        prediction = self.predict(image)
        out = prediction.as_dict(heatmaps=heatmaps != "none")
        if heatmaps == "base64":
            for name in ("heatmap_png", "overlay_png"):
                out[f"{name}_base64"] = base64.b64encode(out.pop(name)).decode()
        return out

    def answer_many(
        self, images: Sequence[bytes], heatmaps: HeatmapMode = "bytes"
    ) -> list[dict[str, Any] | AppError]:
        """Score a list at once (batch jobs): one answer or 4xx :class:`AppError` per image.

        Already a batch, so it skips the micro-batcher: images are decoded in threads and go
        to the engine in chunks of its ``max_batch_size`` (the engine's lock keeps it one
        forward at a time alongside single requests).
        """
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            prepared = list(pool.map(self._prepare_or_error, images))
            good = [p for p in prepared if isinstance(p, Prepared)]
            predictions = iter(self.engine.predict_prepared(good))
            out: list[dict[str, Any] | AppError] = []
            for item in prepared:
                if isinstance(item, AppError):
                    out.append(item)
                    continue
                answer = next(predictions).as_dict(heatmaps=heatmaps != "none")
                if heatmaps == "base64":
                    for name in ("heatmap_png", "overlay_png"):
                        answer[f"{name}_base64"] = base64.b64encode(answer.pop(name)).decode()
                out.append(answer)
        return out

    def warm_up(self) -> float:
        """Answer one synthetic photo end to end; return the seconds it took.

        The first answer of a fresh process pays for kernel selection, the batcher's thread
        and the PNG encoder (and, on a GPU, cuDNN's autotuning); servers pay it here, before
        they report ready, instead of in a user's first request.
        """
        geometry = self.engine.geometry
        start = time.perf_counter()
        self.answer(warm_up_photo(geometry.width, geometry.height), heatmaps="bytes")
        return time.perf_counter() - start

    def _prepare_or_error(self, image: bytes) -> Prepared | AppError:
        try:
            return self.engine.prepare(image)
        except ImageDecodeError as exc:
            return decode_error_to_app_error(exc)

    def close(self) -> None:
        self.batcher.close()


def warm_up_photo(width: int, height: int) -> bytes:
    """A PNG of a dark oval on skin-coloured ground: a valid input that exercises every step."""
    photo = Image.new("RGB", (width, height), (214, 160, 140))
    ImageDraw.Draw(photo).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(110, 70, 60)
    )
    out = io.BytesIO()
    photo.save(out, format="PNG")
    return out.getvalue()
