"""Lambda ``history``: a user's predictions under ``/v1/predictions``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.deps import CurrentUser, DbSession, OptionalUser, SettingsDep, Store
from skinscan_common.errors import UnauthorizedError
from skinscan_common.schemas import ErrorBody, PredictionPage, PredictionView
from skinscan_common.services import predictions, report_pdf

router = APIRouter(
    prefix="/v1/predictions",
    tags=["history"],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)


@router.get("", response_model=PredictionPage)
def list_predictions(
    user: CurrentUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=predictions.MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    verdict: Literal["benign", "malignant", "unknown"] | None = None,
) -> PredictionPage:
    """The caller's predictions, newest first; pass ``next_cursor`` back for the next page."""
    return predictions.list_predictions(
        session, user.id, limit=limit, cursor=cursor, verdict=verdict
    )


@router.get("/{prediction_id}", response_model=PredictionView)
def get_prediction(
    prediction_id: uuid.UUID,
    user: OptionalUser,
    session: DbSession,
    store: Store,
    settings: SettingsDep,
    x_capability_token: Annotated[str | None, Header(max_length=128)] = None,
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> PredictionView:
    """One prediction with short-lived URLs for the photo, heatmap and overlay.

    Guests read their upload's prediction with the capability token ``POST /v1/uploads`` gave
    them (header ``X-Capability-Token``, or ``?token=``); the id alone reveals nothing.
    """
    guest_token = x_capability_token or token
    if guest_token:
        row = predictions.get_for_guest(
            session, prediction_id, guest_token, settings.guest_token_ttl_s
        )
    elif user is not None:
        row = predictions.get_owned(session, user.id, prediction_id)
    else:
        raise UnauthorizedError("missing bearer or capability token", code="not_authenticated")
    return predictions.view(row, store, settings.url_ttl_s)


@router.get(
    "/{prediction_id}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 409: {"model": ErrorBody}},
)
def prediction_report(
    prediction_id: uuid.UUID, user: CurrentUser, session: DbSession, store: Store
) -> Response:
    """A one-page PDF report: photo, heatmap overlay, verdict, probability, model, date."""
    row = predictions.get_owned(session, user.id, prediction_id)
    pdf = report_pdf.report_for(row, store)
    filename = f"skinscan-report-{row.created_at:%Y-%m-%d}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.delete("/{prediction_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_prediction(
    prediction_id: uuid.UUID, user: CurrentUser, session: DbSession, store: Store
) -> Response:
    """Delete a prediction and its stored objects."""
    row = predictions.get_owned(session, user.id, prediction_id)
    predictions.delete(session, store, row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


app = create_function_app("SkinScan history", [router])
handler = lambda_handler(app)
