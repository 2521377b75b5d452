"""Score a list of stored images at once and write their heatmaps: one batch endpoint call.

Shared by the SageMaker container (JSON body ``{"bucket", "items": [...]}``), the in-process
endpoint client and ``skinscan batch``. Each item names the image and where its heatmap and
overlay go; each answer is ``{"key", "status": "done", <result fields>, "heatmap_key",
"overlay_key"}`` or ``{"key", "status": "rejected", "error"}`` for an image that can't be
scored (missing, empty, not an image, too large). The model call itself is ``score_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from skinscan_common.errors import AppError
from skinscan_common.services.scoring import PNG, split_answer
from skinscan_common.storage import InvalidKeyError, ObjectNotFoundError

MAX_ITEMS = 256
ScoreMany = Callable[[list[bytes]], Sequence[dict[str, Any] | AppError]]


class Blobs(Protocol):
    """Where images are read and heatmaps written (an ``ObjectStore`` or a local folder)."""

    def get(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str = ...) -> None: ...


def output_keys(prefix: str, key: str) -> dict[str, str]:
    """Where a batch image's heatmap and overlay go: ``{prefix}{key}.heatmap.png``."""
    return {
        "key": key,
        "heatmap_key": f"{prefix}{key}.heatmap.png",
        "overlay_key": f"{prefix}{key}.overlay.png",
    }


def parse_items(raw: Any) -> list[dict[str, str]]:
    """Validate a request's ``items``; 422 with the reason otherwise."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS:
        raise AppError(
            f"items must be a list of 1 to {MAX_ITEMS} objects",
            code="validation_error",
            status_code=422,
        )
    items = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise AppError("every item needs a key", code="validation_error", status_code=422)
        items.append(
            {k: str(item[k]) for k in ("key", "heatmap_key", "overlay_key") if item.get(k)}
        )
    return items


def _read(blobs: Blobs, key: str) -> bytes | str:
    try:
        return blobs.get(key)
    except (ObjectNotFoundError, FileNotFoundError):
        return "no such image"
    except (InvalidKeyError, IsADirectoryError, PermissionError) as exc:
        return f"cannot read this key: {exc}"


def score_objects(
    blobs: Blobs, items: list[dict[str, str]], score_many: ScoreMany, workers: int = 8
) -> list[dict[str, Any]]:
    """Read, score together, write the PNGs; one answer per item, in order."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        images = list(pool.map(lambda item: _read(blobs, item["key"]), items))
        good = [data for data in images if isinstance(data, bytes)]
        answers = iter(score_many(good) if good else [])
        out: list[dict[str, Any]] = []
        writes = []
        for item, data in zip(items, images, strict=True):
            answer = next(answers) if isinstance(data, bytes) else AppError(str(data))
            if isinstance(answer, AppError):
                out.append({"key": item["key"], "status": "rejected", "error": answer.message})
                continue
            scored = split_answer(answer)
            row: dict[str, Any] = {"key": item["key"], "status": "done"}
            row.update(scored.result.model_dump())
            for name, png in (
                ("heatmap_key", scored.heatmap_png),
                ("overlay_key", scored.overlay_png),
            ):
                target = item.get(name)
                if target and png:
                    writes.append(pool.submit(blobs.put, target, png, PNG))
                row[name] = target if target and png else None
            out.append(row)
        for write in writes:
            write.result()
    return out
