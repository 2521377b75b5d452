"""Score a list of stored images at once and write their heatmaps: one batch endpoint call.

Shared by the SageMaker container (JSON body ``{"bucket", "items": [...]}``), the in-process
endpoint client and ``skinscan batch``. Each item names the image and where its heatmap and
overlay go; each answer is ``{"key", "status": "done", <result fields>, "heatmap_key",
"overlay_key"}`` or ``{"key", "status": "rejected", "error"}`` for an image that can't be
scored (missing, empty, not an image, too large). The model call itself is ``score_many``.

A heatmap or overlay that can't be written (a key too long for the bucket, a failed PUT) costs
only that image its PNG: its answer keeps the verdict with ``None`` in place of the key, and
the other images of the call are unaffected. A batch request may not read users' photos or
results (``uploads/``, ``results/``: they are deleted with their account, batch outputs are
not) nor write anywhere but under ``batch/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from skinscan_common.errors import AppError
from skinscan_common.observability import logger
from skinscan_common.services.scoring import PNG, split_answer
from skinscan_common.storage import InvalidKeyError, ObjectNotFoundError

MAX_ITEMS = 256
#: The error of an image that is not (yet) in the store: a job re-run tries it again.
NO_SUCH_IMAGE = "no such image"
#: Users' photos and their results: deleted with the account, so never a batch job's input.
PRIVATE_PREFIXES = ("uploads/", "results/")
#: Where a batch request may write heatmaps and overlays (in a bucket).
OUTPUT_PREFIX = "batch/"
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


def private_key_error(key: str) -> str | None:
    """Why a bucket batch job may not read ``key`` (a user's photo or result), or None."""
    if key.startswith(PRIVATE_PREFIXES):
        return (
            "batch jobs may not read users' photos or results "
            f"({' or '.join(PRIVATE_PREFIXES)}): list copies under another prefix"
        )
    return None


def parse_items(raw: Any) -> list[dict[str, str]]:
    """Validate a bucket request's ``items``; 422 with the reason otherwise.

    An item under a private prefix is kept with its refusal (``refused``), answered rejected;
    a heatmap or overlay key outside ``batch/`` is dropped (no PNG is written for it).
    """
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
        parsed = {"key": item["key"]}
        for name in ("heatmap_key", "overlay_key"):
            target = str(item.get(name) or "")
            if target.startswith(OUTPUT_PREFIX):
                parsed[name] = target
        if (refusal := private_key_error(item["key"])) is not None:
            parsed["refused"] = refusal
        items.append(parsed)
    return items


def _read(blobs: Blobs, item: dict[str, str]) -> bytes | str:
    if "refused" in item:
        return item["refused"]
    try:
        return blobs.get(item["key"])
    except (ObjectNotFoundError, FileNotFoundError):
        return NO_SUCH_IMAGE
    except (InvalidKeyError, IsADirectoryError, PermissionError) as exc:
        return f"cannot read this key: {exc}"


#: Keys of unwritten PNGs named in the one log line of a call (the rest are counted).
LOGGED_FAILURES = 5


def _drop_unwritten(
    row: dict[str, Any], writes: dict[str, Future[None]]
) -> list[tuple[str, Exception]]:
    """Wait for a row's PNG writes; a failed one leaves its key out (the verdict stands).

    Returns the failed targets with their errors, for :func:`_log_unwritten`.
    """
    failed = []
    for name, write in writes.items():
        try:
            write.result()
        except Exception as exc:  # that image's PNG only: the call's other images are unaffected
            failed.append((row[name], exc))
            row[name] = None
    return failed


def _log_unwritten(failed: list[tuple[str, Exception]]) -> None:
    """One line for all the PNGs a call could not write, with the first error's traceback.

    A store that refuses every write (throttled, down) fails them all alike: a line and a
    traceback per PNG would be 512 of each for one 256-image call.
    """
    if not failed:
        return
    first_error = failed[0][1]
    logger.error(
        "batch heatmaps not written",
        exc_info=first_error,
        extra={
            "failed": len(failed),
            "targets": [target for target, _exc in failed[:LOGGED_FAILURES]],
            "error_type": type(first_error).__name__,
            "error_types": sorted({type(exc).__name__ for _target, exc in failed}),
        },
    )


def score_objects(
    blobs: Blobs, items: list[dict[str, str]], score_many: ScoreMany, workers: int = 8
) -> list[dict[str, Any]]:
    """Read, score together, write the PNGs; one answer per item, in order."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        images = list(pool.map(lambda item: _read(blobs, item), items))
        good = [data for data in images if isinstance(data, bytes)]
        answers = iter(score_many(good) if good else [])
        out: list[dict[str, Any]] = []
        writes: list[tuple[dict[str, Any], dict[str, Future[None]]]] = []
        for item, data in zip(items, images, strict=True):
            answer = next(answers) if isinstance(data, bytes) else AppError(str(data))
            if isinstance(answer, AppError):
                out.append({"key": item["key"], "status": "rejected", "error": answer.message})
                continue
            scored = split_answer(answer)
            row: dict[str, Any] = {"key": item["key"], "status": "done"}
            row.update(scored.result.model_dump())
            started: dict[str, Future[None]] = {}
            for name, png in (
                ("heatmap_key", scored.heatmap_png),
                ("overlay_key", scored.overlay_png),
            ):
                target = item.get(name)
                if target and png:
                    started[name] = pool.submit(blobs.put, target, png, PNG)
                row[name] = target if target and png else None
            writes.append((row, started))
            out.append(row)
        unwritten = [
            failure for row, started in writes for failure in _drop_unwritten(row, started)
        ]
    _log_unwritten(unwritten)
    return out
