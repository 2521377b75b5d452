"""Where objects live (the same layout in S3 and in the local folder).

- ``uploads/{owner}/{prediction_id}[.ext]``: the photo (``owner`` is the user id or ``guest``;
  the S3 upload trigger and the guest-expiry lifecycle rule in infra/template.yaml rely on it);
- ``results/{owner}/{prediction_id}/heatmap.png`` and ``.../overlay.png``: model outputs.

Deleting an account deletes everything under :func:`user_prefixes` plus every key recorded in the
user's prediction rows.
"""

from __future__ import annotations

import uuid

GUEST = "guest"


def owner_segment(owner_id: uuid.UUID | None) -> str:
    """The user id, or ``guest``."""
    return str(owner_id) if owner_id else GUEST


def user_prefixes(user_id: uuid.UUID) -> list[str]:
    """Every prefix holding a user's objects."""
    return [f"uploads/{user_id}/", f"results/{user_id}/"]


def image_key(prediction_id: uuid.UUID, owner_id: uuid.UUID | None, ext: str = "") -> str:
    """The uploaded photo."""
    suffix = f".{ext.lstrip('.')}" if ext else ""
    return f"uploads/{owner_segment(owner_id)}/{prediction_id}{suffix}"


def results_prefix(prediction_id: uuid.UUID, owner_id: uuid.UUID | None) -> str:
    """Folder of one prediction's model outputs."""
    return f"results/{owner_segment(owner_id)}/{prediction_id}/"


def heatmap_key(prediction_id: uuid.UUID, owner_id: uuid.UUID | None) -> str:
    """The Grad-CAM heatmap (PNG)."""
    return results_prefix(prediction_id, owner_id) + "heatmap.png"


def overlay_key(prediction_id: uuid.UUID, owner_id: uuid.UUID | None) -> str:
    """The heatmap blended over the photo (PNG)."""
    return results_prefix(prediction_id, owner_id) + "overlay.png"
