"""Lambda ``auth``: accounts and tokens under ``/v1/auth``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from skinscan_common.api import create_function_app, lambda_handler
from skinscan_common.deps import CurrentUser, DbSession, SettingsDep, Store
from skinscan_common.schemas import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    ErrorBody,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    TokenPair,
    UserView,
)
from skinscan_common.services import accounts

ERRORS = {
    401: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
}

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=ERRORS)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterResponse,
    responses={409: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
def register(
    body: RegisterRequest, request: Request, session: DbSession, settings: SettingsDep
) -> RegisterResponse:
    """Create an account and log it in (sign-ups per network address are limited)."""
    client = request.client.host if request.client else "unknown"
    user, tokens = accounts.register(session, settings, body.email, body.password, client)
    return RegisterResponse(user=accounts.user_view(user), tokens=tokens)


@router.post("/login", response_model=TokenPair, responses={429: {"model": ErrorBody}})
def login(body: LoginRequest, session: DbSession, settings: SettingsDep) -> TokenPair:
    """Exchange email and password for an access token and a refresh token."""
    return accounts.login(session, settings, body.email, body.password)


@router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, session: DbSession, settings: SettingsDep) -> TokenPair:
    """Rotate a refresh token: the old one stops working, reusing it revokes the session."""
    return accounts.refresh(session, settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(body: LogoutRequest, session: DbSession) -> Response:
    """Revoke the refresh token's session."""
    accounts.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
def logout_all(user: CurrentUser, session: DbSession) -> Response:
    """End every session of the account, on every device (a lost phone, a shared computer)."""
    accounts.logout_everywhere(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password", response_model=TokenPair, responses={429: {"model": ErrorBody}})
def change_password(
    body: ChangePasswordRequest, user: CurrentUser, session: DbSession, settings: SettingsDep
) -> TokenPair:
    """Set a new password: every session ends, and the answer starts a new one here."""
    return accounts.change_password(
        session, settings, user, body.current_password, body.new_password
    )


@router.get("/me", response_model=UserView)
def me(user: CurrentUser) -> UserView:
    """The authenticated account."""
    return accounts.user_view(user)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses={429: {"model": ErrorBody}})
def delete_me(
    body: DeleteAccountRequest,
    user: CurrentUser,
    session: DbSession,
    settings: SettingsDep,
    store: Store,
) -> Response:
    """Delete the account with all its predictions and stored objects; the body carries the
    account's password (422 ``wrong_password``, throttled like logins)."""
    accounts.delete_account(session, settings, store, user, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


app = create_function_app("SkinScan auth", [router])
handler = lambda_handler(app)
