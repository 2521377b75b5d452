"""Accounts: register, log in, refresh, log out, delete; refresh-token rotation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import validate_email
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db.models import Prediction, RefreshToken, User, utcnow
from skinscan_common.errors import (
    AppError,
    ConflictError,
    TooManyRequestsError,
    UnauthorizedError,
)
from skinscan_common.observability import logger, metrics
from skinscan_common.schemas import TokenPair, UserView
from skinscan_common.security import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    hash_token,
    issue_access_token,
    jwt_key,
    needs_rehash,
    new_opaque_token,
    stored_as_typed,
    verify_password,
)
from skinscan_common.services import throttle
from skinscan_common.storage import ObjectStore, user_prefixes

INVALID_CREDENTIALS = "invalid email or password"
INVALID_REFRESH = "invalid or expired refresh token"


def normalise_email(email: str) -> str | None:
    """The address as registration stores it (the email validator's normal form: NFC, an
    internationalised domain as Unicode, no display name; lower-cased, since SkinScan treats
    addresses case-insensitively), or None when it is no email address at all."""
    try:
        _name, address = validate_email(email.strip())
    except ValueError:  # pydantic's PydanticCustomError is one
        return None
    return address.lower()


def user_view(user: User) -> UserView:
    return UserView(id=user.id, email=user.email, created_at=user.created_at)


def _add_metric(name: str) -> None:
    try:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    except Exception:  # metrics must never break a request
        pass


def issue_tokens(
    session: Session, settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID | None = None
) -> TokenPair:
    """A new access token and a new refresh token (in ``family_id`` or a new family)."""
    raw = new_opaque_token()
    family_id = family_id or uuid.uuid4()
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_token(raw),
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    session.flush()
    access = issue_access_token(
        user_id,
        jwt_key(settings),
        settings.access_token_ttl_s,
        settings.jwt_issuer,
        session_id=family_id,
    )
    return TokenPair(
        access_token=access,
        refresh_token=raw,
        expires_in=settings.access_token_ttl_s,
        refresh_expires_in=settings.refresh_token_ttl_s,
    )


def register(
    session: Session, settings: Settings, email: str, password: str, client: str | None = None
) -> tuple[User, TokenPair]:
    """Create an account (409 if the email is taken) and log it in.

    ``client``: the caller's network address; its sign-ups are counted (429 past
    ``register_max_per_client`` an hour). None (a command, a test) counts nothing.
    """
    if client is not None:
        wait = throttle.begin(session, settings, "register", client)  # counted (committed)
        if wait:
            raise TooManyRequestsError(
                "too many sign-ups from this network; try again later",
                headers={"Retry-After": str(wait)},
            )
    address = normalise_email(email)
    if address is None:
        raise AppError("enter a valid email address", code="invalid_email", status_code=422)
    email = address
    try:
        check_policy(password, email, settings.password_min_length, settings.password_max_length)
    except PasswordPolicyError as exc:
        raise AppError(str(exc), code="weak_password", status_code=422) from exc
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConflictError("an account with this email already exists", code="email_taken")
    user = User(email=email, password_hash=hash_password(password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(
            "an account with this email already exists", code="email_taken"
        ) from exc
    tokens = issue_tokens(session, settings, user.id)
    logger.info("account registered", extra={"user_id": str(user.id)})
    _add_metric("AccountRegistered")
    return user, tokens


def login(session: Session, settings: Settings, email: str, password: str) -> TokenPair:
    """Tokens for valid credentials; the same 401 for unknown email and wrong password."""
    address = normalise_email(email)
    # Not an address at all: no account can have it, but it is counted and costs the same.
    email = address if address is not None else email.strip().lower()
    wait = throttle.begin_attempt(session, settings, email)  # counted (and committed) first
    if wait:
        raise TooManyRequestsError(
            "too many failed logins; try again later",
            headers={"Retry-After": str(wait)},
        )
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if not verify_password(user.password_hash if user else None, password) or user is None:
        logger.info("login failed")
        _add_metric("LoginFailed")
        raise UnauthorizedError(INVALID_CREDENTIALS, code="invalid_credentials")
    throttle.clear(session, email)
    if needs_rehash(user.password_hash) or stored_as_typed(password):
        user.password_hash = hash_password(password)
    logger.info("login", extra={"user_id": str(user.id)})
    return issue_tokens(session, settings, user.id)


def session_is_live(session: Session, user_id: uuid.UUID, family_id: uuid.UUID) -> bool:
    """Whether sign-in session ``family_id`` of ``user_id`` still stands: not logged out, not
    ended by "sign out everywhere", a password change or a reused refresh token."""
    live = session.scalar(
        select(RefreshToken.id)
        .where(
            RefreshToken.family_id == family_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
        )
        .limit(1)
    )
    return live is not None


def _revoke_family(session: Session, family_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _session_started(session: Session, family_id: uuid.UUID) -> datetime:
    """When the session began: its first refresh token (rotated ones are kept, marked used)."""
    started = session.scalar(
        select(func.min(RefreshToken.created_at)).where(RefreshToken.family_id == family_id)
    )
    return started or utcnow()


def _revoke_all(session: Session, user_id: uuid.UUID) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def refresh(session: Session, settings: Settings, raw_token: str) -> TokenPair:
    """Rotate a refresh token; reuse of a rotated one revokes its whole family."""
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw_token))
    )
    if row is None:
        raise UnauthorizedError(INVALID_REFRESH, code="invalid_refresh_token")
    now = utcnow()
    if row.used_at is not None or row.revoked_at is not None:
        if row.used_at is not None and row.revoked_at is None:
            logger.warning(
                "refresh token reuse: family revoked",
                extra={"user_id": str(row.user_id), "family_id": str(row.family_id)},
            )
            _add_metric("RefreshTokenReuse")
        _revoke_family(session, row.family_id)
        session.commit()
        raise UnauthorizedError(INVALID_REFRESH, code="invalid_refresh_token")
    if row.expires_at <= now or _session_started(session, row.family_id) <= now - timedelta(
        seconds=settings.session_max_age_s
    ):
        raise UnauthorizedError(INVALID_REFRESH, code="invalid_refresh_token")
    # Atomic claim: of two concurrent refreshes with one token, only one wins.
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == row.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        _revoke_family(session, row.family_id)
        session.commit()
        raise UnauthorizedError(INVALID_REFRESH, code="invalid_refresh_token")
    return issue_tokens(session, settings, row.user_id, family_id=row.family_id)


def logout(session: Session, raw_token: str) -> None:
    """Revoke the refresh token's family (this session); unknown tokens are ignored."""
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw_token))
    )
    if row is not None:
        _revoke_family(session, row.family_id)
        logger.info("logout", extra={"user_id": str(row.user_id)})


def logout_everywhere(session: Session, user: User) -> None:
    """End every session of the account (each device must sign in again).

    Their access tokens stop working at once in the apps (see :func:`session_is_live`); the
    gateway's stateless authorizer lets them by until they expire, and the app refuses them.
    """
    _revoke_all(session, user.id)
    logger.info("logout everywhere", extra={"user_id": str(user.id)})


def confirm_password(session: Session, settings: Settings, user: User, password: str) -> None:
    """Check the signed-in user's own password before a change that cannot be undone.

    Guesses count against the same throttle as logins (a stolen access token must not become a
    way to guess the password). A wrong one is 422, not 401: the caller's token is fine, and a
    401 would send a client to refresh it.
    """
    wait = throttle.begin_attempt(session, settings, user.email)  # counted (and committed)
    if wait:
        raise TooManyRequestsError(
            "too many wrong passwords; try again later", headers={"Retry-After": str(wait)}
        )
    if not verify_password(user.password_hash, password):
        raise AppError("the password is not right", code="wrong_password", status_code=422)
    throttle.clear(session, user.email)


def change_password(
    session: Session, settings: Settings, user: User, current: str, new: str
) -> TokenPair:
    """Set a new password if ``current`` is right; every session ends, a new one starts here."""
    confirm_password(session, settings, user, current)
    try:
        check_policy(new, user.email, settings.password_min_length, settings.password_max_length)
    except PasswordPolicyError as exc:
        raise AppError(str(exc), code="weak_password", status_code=422) from exc
    user.password_hash = hash_password(new)
    _revoke_all(session, user.id)
    logger.info("password changed", extra={"user_id": str(user.id)})
    _add_metric("PasswordChanged")
    return issue_tokens(session, settings, user.id)


def delete_account(
    session: Session, settings: Settings, store: ObjectStore, user: User, password: str
) -> int:
    """Delete the account, its predictions, tokens and stored objects if ``password`` is the
    account's (a phone left unlocked must not be enough); returns the objects deleted.

    The user's row is locked first: a scan being stored for this user (its row references the
    user) finishes before the listing below, or waits and then fails for want of its user.
    """
    confirm_password(session, settings, user, password)  # commits the attempt's count
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    keys = [
        key
        for row in session.execute(
            select(Prediction.image_key, Prediction.heatmap_key, Prediction.overlay_key).where(
                Prediction.owner_id == user.id
            )
        )
        for key in row
        if key
    ]
    # Rows first, objects after: a photo being scored meanwhile either wrote its heatmaps
    # before its row was deleted here (they are in the folders deleted below), or finds its row
    # gone when it records the answer (it waits for this transaction) and deletes them itself.
    session.execute(Prediction.__table__.delete().where(Prediction.owner_id == user.id))
    session.execute(RefreshToken.__table__.delete().where(RefreshToken.user_id == user.id))
    throttle.clear(session, user.email)  # nothing may say this address had an account
    session.delete(user)
    session.flush()
    prefixes = user_prefixes(user.id)
    deleted = sum(store.delete_prefix(prefix) for prefix in prefixes)
    for key in keys:
        if not key.startswith(tuple(prefixes)):
            store.delete(key)
            deleted += 1
    logger.info("account deleted", extra={"user_id": str(user.id), "objects": deleted})
    _add_metric("AccountDeleted")
    return deleted
