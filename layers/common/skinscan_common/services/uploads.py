"""Direct uploads: a pending prediction and a presigned POST for ``uploads/{owner}/{id}``.

The client uploads the photo straight to the bucket; the ``ObjectCreated`` event then scores it
(``services.upload_events``). Guests get a capability token (random, stored hashed) to read the
one prediction; the prediction id alone never reveals a guest's result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db.models import Prediction
from skinscan_common.errors import AppError, TooManyRequestsError
from skinscan_common.security.tokens import new_opaque_token
from skinscan_common.services import predictions, throttle
from skinscan_common.services.scoring import IMAGE_TYPES
from skinscan_common.storage import GUEST, ObjectStore, PresignedPost, image_key

UPLOAD_PREFIX = "uploads/"


@dataclass
class UploadTicket:
    """What ``POST /v1/uploads`` hands out."""

    prediction: Prediction
    post: PresignedPost
    content_types: list[str]
    max_bytes: int
    guest_token: str | None


def accepted_types(content_type: str | None) -> list[str]:
    """The content types the upload form allows; 415 for anything but JPEG or PNG."""
    if content_type is None:
        return list(IMAGE_TYPES)
    wanted = content_type.split(";")[0].strip().lower()
    if wanted not in IMAGE_TYPES:
        raise AppError(
            f"content type {content_type!r} is not accepted: upload image/jpeg or image/png",
            code="unsupported_media_type",
            status_code=415,
        )
    return [wanted]


def check_form_rate(session: Session, settings: Settings, client: str) -> None:
    """429 (with ``Retry-After``) once ``client`` had ``upload_forms_per_client`` forms in the
    window; the count is committed at once, whatever happens next."""
    wait = throttle.begin(session, settings, "upload", client)
    if wait:
        raise TooManyRequestsError(
            "too many uploads from this network; try again later",
            headers={"Retry-After": str(wait)},
        )


def create_upload(
    session: Session,
    store: ObjectStore,
    *,
    owner_id: uuid.UUID | None,
    content_type: str | None,
    max_bytes: int,
    expires_s: int,
) -> UploadTicket:
    """A pending prediction and the form that uploads its photo (at most ``max_bytes``)."""
    types = accepted_types(content_type)
    prediction_id = uuid.uuid4()
    guest_token = None if owner_id else new_opaque_token()
    key = image_key(prediction_id, owner_id)
    row = predictions.create_pending(
        session,
        image_key=key,
        owner_id=owner_id,
        guest_token=guest_token,
        prediction_id=prediction_id,
    )
    post = store.presign_post(key, types, max_bytes=max_bytes, expires=expires_s)
    return UploadTicket(row, post, types, max_bytes, guest_token)


def is_form_upload_key(key: str) -> bool:
    """A key the upload form writes (``uploads/{owner}/{prediction_id}``, no extension).

    Its prediction row is committed before the form is handed out, so such an object without a
    row belongs to a prediction (or account) deleted while the form was still valid. Photos that
    ``POST /v1/predict`` keeps carry an extension and are written before their row.
    """
    return prediction_id_of(key) is not None and "." not in key.rsplit("/", 1)[-1]


def prediction_id_of(key: str) -> uuid.UUID | None:
    """The prediction an ``uploads/{owner}/{prediction_id}[.ext]`` key belongs to, else None."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != UPLOAD_PREFIX or not parts[1]:
        return None
    try:
        owner = parts[1] if parts[1] == GUEST else str(uuid.UUID(parts[1]))
        prediction_id = uuid.UUID(parts[2].split(".", 1)[0])
    except ValueError:
        return None
    return prediction_id if owner == parts[1] else None
