"""FastAPI dependencies; the local stack and tests override them via ``dependency_overrides``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from skinscan_common.cache import KeyedCache
from skinscan_common.config import Settings, get_settings
from skinscan_common.db import User, get_engine, session_factory
from skinscan_common.endpoint import EndpointClient, get_endpoint_client
from skinscan_common.errors import UnauthorizedError
from skinscan_common.security import TokenError, jwt_key, verify_access_token
from skinscan_common.services import accounts
from skinscan_common.storage import ObjectStore, build_object_store

_stores: KeyedCache[ObjectStore] = KeyedCache()
_endpoints: KeyedCache[EndpointClient] = KeyedCache()
_bearer = HTTPBearer(auto_error=False)


def settings_dep() -> Settings:
    """The settings (override this one to point a whole app elsewhere)."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dep)]


def db_session(settings: SettingsDep) -> Iterator[Session]:
    """A session per request: committed on success, rolled back on error."""
    session = session_factory(get_engine(settings.database_url))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _store_key(settings: Settings) -> tuple[object, ...]:
    return (
        settings.storage_backend,
        settings.bucket,
        settings.s3_endpoint_url,
        str(settings.objects_dir),
        settings.public_base_url,
        settings.data_dir,
    )


def object_store(settings: SettingsDep) -> ObjectStore:
    """The object store (one per configuration, reused)."""
    return _stores.get(_store_key(settings), lambda: build_object_store(settings))


def endpoint_client(settings: SettingsDep) -> EndpointClient:
    """The model endpoint client (one per configuration; the local engine loads once)."""
    key = (settings.endpoint_mode, settings.endpoint_name, str(settings.model_path))
    return _endpoints.get(key, lambda: get_endpoint_client(settings))


def reset_caches() -> None:
    """Forget cached stores and endpoint clients (tests)."""
    _stores.clear()
    _endpoints.clear()


# scope="function": commit before the response goes out. With FastAPI's default ("request")
# the commit ran after the client already had its 2xx, so a failed commit lost data silently
# and a client's next request could miss what it had just written.
DbSession = Annotated[Session, Depends(db_session, scope="function")]
Store = Annotated[ObjectStore, Depends(object_store)]
Endpoint = Annotated[EndpointClient, Depends(endpoint_client)]


def _user_from_credentials(
    credentials: HTTPAuthorizationCredentials | None, settings: Settings, session: Session
) -> User | None:
    if credentials is None:
        return None
    if credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("expected a Bearer token", code="invalid_token")
    try:
        claims = verify_access_token(
            credentials.credentials, jwt_key(settings), settings.jwt_issuer
        )
    except TokenError as exc:
        raise UnauthorizedError(str(exc), code="invalid_token") from exc
    user = session.get(User, claims.user_id)
    if user is None:
        raise UnauthorizedError("account no longer exists", code="invalid_token")
    # Signed out (here, everywhere, by a password change): its access tokens end with it, not
    # up to access_token_ttl_s later. A token naming no session predates sessions: refused.
    if claims.session_id is None or not accounts.session_is_live(
        session, user.id, claims.session_id
    ):
        raise UnauthorizedError("this session has ended; sign in again", code="invalid_token")
    return user


def optional_user(
    request: Request,
    settings: SettingsDep,
    session: DbSession,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> User | None:
    """The caller if an ``Authorization`` header is sent (401 if it is invalid), else None."""
    user = _user_from_credentials(credentials, settings, session)
    request.state.user_id = str(user.id) if user else None
    return user


def current_user(user: User | None = Depends(optional_user)) -> User:
    """The authenticated caller; 401 without a valid access token."""
    if user is None:
        raise UnauthorizedError("missing bearer token", code="not_authenticated")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
