"""Pydantic schemas shared by the functions: requests, answers, errors, model results."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Verdict = Literal["benign", "malignant", "unknown"]
Status = Literal["pending", "done", "failed"]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, object]] | None = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


# Auth -------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1024)


class RegisterRequest(_Strict):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


class LoginRequest(_Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class ChangePasswordRequest(_Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class DeleteAccountRequest(_Strict):
    password: str = Field(min_length=1, max_length=1024, description="the account's password")


class UserView(BaseModel):
    id: uuid.UUID
    email: str
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int


class RegisterResponse(BaseModel):
    user: UserView
    tokens: TokenPair


# Predictions ------------------------------------------------------------------------------------


class PredictionResult(BaseModel):
    """What the model engine answers for one image (heatmap bytes travel separately)."""

    model_config = ConfigDict(protected_namespaces=())

    verdict: Verdict
    p_malignant: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    top_class: str
    probabilities: dict[str, float]
    ood_score: float
    reason: str | None = None
    model_version: str


class PredictionSummary(BaseModel):
    """One row of the history list."""

    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: uuid.UUID
    status: Status
    verdict: Verdict | None = None
    p_malignant: float | None = None
    confidence: float | None = None
    top_class: str | None = None
    model_version: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class PredictionView(PredictionSummary):
    """One prediction in full, with short-lived URLs for its images."""

    probabilities: dict[str, float] | None = None
    ood_score: float | None = None
    reason: str | None = None
    error: str | None = None
    image_url: str | None = None
    heatmap_url: str | None = None
    overlay_url: str | None = None
    urls_expire_in: int | None = None


class PredictionPage(BaseModel):
    items: list[PredictionSummary]
    next_cursor: str | None = None
