"""Lambda ``uploads``: ``POST /v1/uploads`` hands out a presigned S3 POST for one photo.

Signing in is optional. The answer carries the pending prediction's id, the form to upload the
photo straight to the bucket (``uploads/{owner|guest}/{prediction_id}``, JPEG or PNG, at most
``max_upload_bytes``), and for guests a capability token: poll ``GET /v1/predictions/{id}``
with header ``X-Capability-Token`` (or ``?token=``). The upload's S3 event runs ``on_upload``.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.deps import DbSession, OptionalUser, SettingsDep, Store
from skinscan_common.schemas import ErrorBody, Status
from skinscan_common.services import uploads

router = APIRouter(
    prefix="/v1",
    tags=["uploads"],
    responses={code: {"model": ErrorBody} for code in (401, 413, 415, 422, 429)},
)


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str | None = Field(
        default=None,
        max_length=100,
        description=(
            "image/jpeg or image/png; left out, either where the store's form can allow both, "
            "else image/jpeg (an S3 form allows one type): `upload.content_types` says which"
        ),
    )


class UploadForm(BaseModel):
    """POST these ``fields`` and then the photo as field ``file`` (multipart) to ``url``."""

    url: str
    fields: dict[str, str]
    key: str
    expires_in: int
    max_bytes: int
    content_types: list[str]


class UploadResponse(BaseModel):
    id: uuid.UUID
    status: Status
    upload: UploadForm
    poll_url: str
    guest_token: str | None = Field(
        default=None, description="guests only: send as X-Capability-Token when polling"
    )


@router.post("/uploads", status_code=status.HTTP_201_CREATED, response_model=UploadResponse)
def create_upload(
    request: Request,
    user: OptionalUser,
    session: DbSession,
    store: Store,
    settings: SettingsDep,
    body: UploadRequest | None = None,
) -> UploadResponse:
    """A pending prediction and the presigned form that uploads its photo (forms per network
    address are limited: 429 past them)."""
    uploads.check_form_rate(session, settings, request.client.host if request.client else "unknown")
    ticket = uploads.create_upload(
        session,
        store,
        owner_id=user.id if user else None,
        content_type=body.content_type if body else None,
        max_bytes=settings.max_upload_bytes,
        expires_s=settings.url_ttl_s,
    )
    post = ticket.post
    return UploadResponse(
        id=ticket.prediction.id,
        status="pending",
        upload=UploadForm(
            url=post.url,
            fields=post.fields,
            key=post.key,
            expires_in=post.expires_in,
            max_bytes=ticket.max_bytes,
            # What the form takes, which may be fewer types than were accepted (S3: one).
            content_types=list(post.content_types) or ticket.content_types,
        ),
        poll_url=f"/v1/predictions/{ticket.prediction.id}",
        guest_token=ticket.guest_token,
    )


app = create_function_app("SkinScan uploads", [router])
handler = lambda_handler(app)
