"""Lambda ``predict``: ``POST /v1/predict`` scores one photo synchronously.

Signing in is optional. A guest gets the result with the heatmap and overlay inline as
``data:`` URLs and nothing is kept; a signed-in user's photo, heatmap, overlay and result are
stored and appear in their history, and the answer carries short-lived URLs to them. The model
runs behind the endpoint client (in process locally, the SageMaker container in AWS): this
module never imports torch.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, UploadFile

from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.deps import DbSession, Endpoint, OptionalUser, SettingsDep, Store
from skinscan_common.endpoint import EndpointError
from skinscan_common.errors import AppError, PayloadTooLargeError
from skinscan_common.observability import logger
from skinscan_common.schemas import ErrorBody, PredictionResult
from skinscan_common.services import predictions, scoring

router = APIRouter(
    prefix="/v1",
    tags=["predict"],
    responses={code: {"model": ErrorBody} for code in (401, 413, 415, 422, 502, 503)},
)


class PredictResponse(PredictionResult):
    """The model's answer, and where to fetch the images (data: URLs for guests)."""

    id: uuid.UUID | None = None
    stored: bool
    image_url: str | None = None
    heatmap_url: str | None = None
    overlay_url: str | None = None
    urls_expire_in: int | None = None


@router.post("/predict", response_model=PredictResponse)
def predict(
    image: UploadFile,
    user: OptionalUser,
    session: DbSession,
    store: Store,
    endpoint: Endpoint,
    settings: SettingsDep,
) -> PredictResponse:
    """Benign / malignant / unknown for one JPEG or PNG photo (multipart field ``image``)."""
    data = image.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLargeError(
            f"the photo is larger than {settings.max_upload_bytes} bytes", code="too_large"
        )
    if not data:
        raise AppError("the photo is empty", code="empty", status_code=422)
    content_type = scoring.sniff_image_type(data)
    if content_type is None:
        raise AppError("send a JPEG or PNG photo", code="unsupported_media_type", status_code=415)
    try:
        answer = endpoint.predict_image(data, content_type)
    except EndpointError as exc:
        logger.warning("the model endpoint refused or failed", extra={"reason": str(exc)})
        raise exc.to_app_error() from exc
    scored = scoring.split_answer(answer)
    result = scored.result.model_dump()
    if user is None:
        return PredictResponse(
            **result,
            stored=False,
            heatmap_url=scoring.data_url(scored.heatmap_png),
            overlay_url=scoring.data_url(scored.overlay_png),
        )
    row = scoring.store_prediction(
        session, store, owner_id=user.id, image=data, content_type=content_type, answer=answer
    )
    view = predictions.view(row, store, settings.url_ttl_s)
    return PredictResponse(
        **result,
        id=row.id,
        stored=True,
        image_url=view.image_url,
        heatmap_url=view.heatmap_url,
        overlay_url=view.overlay_url,
        urls_expire_in=view.urls_expire_in,
    )


app = create_function_app("SkinScan predict", [router])
handler = lambda_handler(app)
