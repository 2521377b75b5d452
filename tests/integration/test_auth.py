"""Accounts through the ASGI app, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from skinscan_common.config import Settings
from skinscan_common.db import User, get_engine, session_factory
from skinscan_common.errors import AppError
from skinscan_common.services import accounts


def test_register_login_me(client: TestClient, register: Any) -> None:
    reg = register("  Ada@Example.COM ")
    assert reg["user"]["email"] == "ada@example.com"
    assert reg["tokens"]["token_type"] == "bearer" and reg["tokens"]["expires_in"] == 900
    login = client.post(
        "/v1/auth/login", json={"email": "ADA@example.com", "password": reg["password"]}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = client.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json() == reg["user"]


def test_duplicate_email_conflicts(client: TestClient, register: Any) -> None:
    register("ada@example.com")
    again = client.post(
        "/v1/auth/register", json={"email": "ADA@example.com", "password": "another good one"}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


def test_weak_password_and_bad_email(client: TestClient) -> None:
    weak = client.post("/v1/auth/register", json={"email": "a@example.com", "password": "short"})
    assert weak.status_code == 422
    assert "at least" in weak.json()["error"]["message"]
    bad = client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "correct horse battery"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"
    assert "email" in bad.json()["error"]["message"]


def test_same_answer_for_unknown_email_and_wrong_password(
    client: TestClient, register: Any
) -> None:
    register("ada@example.com")
    wrong = client.post(
        "/v1/auth/login", json={"email": "ada@example.com", "password": "not the password"}
    )
    unknown = client.post(
        "/v1/auth/login", json={"email": "bob@example.com", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_failed_logins_are_throttled(client: TestClient, register: Any) -> None:
    reg = register("ada@example.com")
    for _ in range(3):  # settings fixture: login_max_failures=3
        r = client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "nope"})
        assert r.status_code == 401
    locked = client.post(
        "/v1/auth/login", json={"email": "ada@example.com", "password": reg["password"]}
    )
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # Unknown emails are throttled alike (no account enumeration through the lockout).
    for _ in range(3):
        client.post("/v1/auth/login", json={"email": "ghost@example.com", "password": "nope"})
    ghost = client.post("/v1/auth/login", json={"email": "ghost@example.com", "password": "x"})
    assert ghost.status_code == 429
    assert ghost.json()["error"] == locked.json()["error"]


def test_parallel_guesses_cannot_pass_the_lockout(
    client: TestClient, register: Any, settings: Settings
) -> None:
    """Guesses sent at once (or through many Lambda instances) each count: only the first
    ``login_max_failures`` get their password checked, and none of the counts is lost."""
    reg = register("ada@example.com")
    guesses = 12
    barrier = threading.Barrier(guesses)
    outcomes: list[str] = []
    factory = session_factory(get_engine(settings.database_url))

    def guess(i: int) -> None:
        with factory() as session:
            barrier.wait()
            try:
                accounts.login(session, settings, "ada@example.com", f"guess {i}")
                outcomes.append("200")
            except AppError as exc:
                outcomes.append(str(exc.status_code))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["401"] * settings.login_max_failures + ["429"] * (
        guesses - settings.login_max_failures
    )
    # Locked now, for the right password too.
    creds = {"email": reg["user"]["email"], "password": reg["password"]}
    right = client.post("/v1/auth/login", json=creds)
    assert right.status_code == 429


def test_success_resets_failures(client: TestClient, register: Any) -> None:
    reg = register("ada@example.com")
    creds = {"email": "ada@example.com", "password": reg["password"]}
    for _ in range(2):
        client.post("/v1/auth/login", json={**creds, "password": "nope"})
    assert client.post("/v1/auth/login", json=creds).status_code == 200
    for _ in range(2):
        client.post("/v1/auth/login", json={**creds, "password": "nope"})
    assert client.post("/v1/auth/login", json=creds).status_code == 200


def test_refresh_rotates(client: TestClient, register: Any) -> None:
    reg = register()
    first = reg["tokens"]["refresh_token"]
    r = client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200
    assert client.post("/v1/auth/refresh", json={"refresh_token": second}).status_code == 200


def test_reused_refresh_token_revokes_the_family(client: TestClient, register: Any) -> None:
    reg = register()
    first = reg["tokens"]["refresh_token"]
    second = client.post("/v1/auth/refresh", json={"refresh_token": first}).json()["refresh_token"]
    reuse = client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "invalid_refresh_token"
    # The token rotated in is revoked too: the thief and the victim both have to log in again.
    assert client.post("/v1/auth/refresh", json={"refresh_token": second}).status_code == 401
    # Other sessions of the same user are untouched.
    other = client.post(
        "/v1/auth/login", json={"email": "ada@example.com", "password": reg["password"]}
    ).json()["refresh_token"]
    assert client.post("/v1/auth/refresh", json={"refresh_token": other}).status_code == 200


def test_unknown_refresh_token(client: TestClient) -> None:
    r = client.post("/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert r.status_code == 401


def test_logout_revokes_refresh(client: TestClient, register: Any) -> None:
    reg = register()
    token = reg["tokens"]["refresh_token"]
    assert client.post("/v1/auth/logout", json={"refresh_token": token}).status_code == 204
    assert client.post("/v1/auth/refresh", json={"refresh_token": token}).status_code == 401
    assert client.post("/v1/auth/logout", json={"refresh_token": token}).status_code == 204


def test_me_requires_token(client: TestClient) -> None:
    r = client.get("/v1/auth/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def _delete_me(client: TestClient, headers: dict[str, str], password: str | None) -> Any:
    body = None if password is None else {"password": password}
    return client.request("DELETE", "/v1/auth/me", json=body, headers=headers)


def test_delete_me(client: TestClient, register: Any, session: Session) -> None:
    reg = register()
    wrong = _delete_me(client, reg["headers"], "not my password")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "wrong_password")
    missing = _delete_me(client, reg["headers"], None)
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "validation_error")
    assert client.get("/v1/auth/me", headers=reg["headers"]).status_code == 200  # still there
    assert _delete_me(client, reg["headers"], reg["password"]).status_code == 204
    assert session.scalar(select(User).where(User.email == "ada@example.com")) is None
    assert client.get("/v1/auth/me", headers=reg["headers"]).status_code == 401
    refresh = client.post(
        "/v1/auth/refresh", json={"refresh_token": reg["tokens"]["refresh_token"]}
    )
    assert refresh.status_code == 401
    login = client.post(
        "/v1/auth/login", json={"email": "ada@example.com", "password": reg["password"]}
    )
    assert login.status_code == 401


def test_failed_commit_is_an_error_not_a_lost_success(
    app: Any, monkeypatch: Any, session: Session
) -> None:
    # The request's transaction commits before the answer goes out: when the commit fails the
    # client hears so (and can retry), instead of a 201 for an account that was never stored.
    from sqlalchemy.exc import OperationalError

    def broken_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    body = {"email": "commit@example.com", "password": "correct horse battery"}
    with TestClient(app, raise_server_exceptions=False) as client:
        monkeypatch.setattr(Session, "commit", broken_commit)
        failed = client.post("/v1/auth/register", json=body)
        monkeypatch.undo()
        assert failed.status_code >= 500, failed.text
        assert session.scalar(select(User).where(User.email == body["email"])) is None
        assert client.post("/v1/auth/register", json=body).status_code == 201
        assert client.post("/v1/auth/login", json=body).status_code == 200


def test_login_finds_the_address_as_registration_stored_it(client: TestClient) -> None:
    """Registration keeps the validator's normal form (NFC, a Unicode domain): login must look
    the address up in the same form, however it is typed."""
    password = "correct horse battery"
    for typed_at_register, typed_at_login in (
        ("jos\u00e9@example.com", "jose\u0301@example.com"),  # NFC / NFD
        ("user@b\u00fccher.example", "USER@xn--bcher-kva.example"),  # Unicode / punycode
    ):
        reg = client.post(
            "/v1/auth/register", json={"email": typed_at_register, "password": password}
        )
        assert reg.status_code == 201, reg.text
        login = client.post("/v1/auth/login", json={"email": typed_at_login, "password": password})
        assert login.status_code == 200, (typed_at_login, login.text)


def test_an_address_that_is_no_address_gets_401_not_500(client: TestClient) -> None:
    for email in ("a\u0000b@example.com", "not an address", "@"):
        r = client.post("/v1/auth/login", json={"email": email, "password": "whatever pass"})
        assert r.status_code == 401, (email, r.text)
        assert r.json()["error"]["code"] == "invalid_credentials"


def test_api_answers_are_never_cached(client: TestClient, register: Any) -> None:
    reg = register()
    for response in (
        client.post("/v1/auth/refresh", json={"refresh_token": reg["tokens"]["refresh_token"]}),
        client.get("/v1/auth/me", headers=reg["headers"]),
        client.post("/v1/auth/login", json={"email": "x@example.com", "password": "nope nope"}),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_deleting_an_account_forgets_its_login_attempts(
    client: TestClient, register: Any, session: Session
) -> None:
    from skinscan_common.db import LoginAttempt
    from skinscan_common.security import hash_token

    reg = register()
    client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "wrong wrong"})
    logins = select(LoginAttempt).where(
        LoginAttempt.key_hash == hash_token("login:ada@example.com")
    )
    assert session.scalar(logins) is not None
    assert _delete_me(client, reg["headers"], reg["password"]).status_code == 204
    session.expire_all()
    assert session.scalar(logins) is None


def _login(client: TestClient, password: str) -> Any:
    return client.post("/v1/auth/login", json={"email": "ada@example.com", "password": password})


def _refresh(client: TestClient, token: str) -> int:
    return client.post("/v1/auth/refresh", json={"refresh_token": token}).status_code


def test_changing_the_password_ends_every_other_session(client: TestClient, register: Any) -> None:
    reg = register()
    other_device = _login(client, reg["password"]).json()["refresh_token"]
    wrong = client.post(
        "/v1/auth/password",
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
        headers=reg["headers"],
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "wrong_password")
    weak = client.post(
        "/v1/auth/password",
        json={"current_password": reg["password"], "new_password": "short"},
        headers=reg["headers"],
    )
    assert (weak.status_code, weak.json()["error"]["code"]) == (422, "weak_password")
    changed = client.post(
        "/v1/auth/password",
        json={"current_password": reg["password"], "new_password": "a brand new passphrase"},
        headers=reg["headers"],
    )
    assert changed.status_code == 200, changed.text
    assert _refresh(client, other_device) == 401  # the thief's session is over
    assert _refresh(client, reg["tokens"]["refresh_token"]) == 401
    assert _refresh(client, changed.json()["refresh_token"]) == 200  # this one goes on
    assert _login(client, reg["password"]).status_code == 401
    assert _login(client, "a brand new passphrase").status_code == 200


def test_wrong_current_passwords_are_throttled_like_logins(
    client: TestClient, register: Any
) -> None:
    reg = register()
    codes = [
        client.post(
            "/v1/auth/password",
            json={"current_password": f"guess number {i}", "new_password": "a brand new one!"},
            headers=reg["headers"],
        ).status_code
        for i in range(5)
    ]
    assert codes == [422, 422, 422, 429, 429]  # login_max_failures is 3 in the tests


def test_signing_out_everywhere_ends_every_session(client: TestClient, register: Any) -> None:
    reg = register()
    phone = _login(client, reg["password"]).json()["refresh_token"]
    laptop = _login(client, reg["password"]).json()["refresh_token"]
    assert client.post("/v1/auth/logout-all", headers=reg["headers"]).status_code == 204
    assert [_refresh(client, t) for t in (phone, laptop, reg["tokens"]["refresh_token"])] == [
        401,
        401,
        401,
    ]
    assert _login(client, reg["password"]).status_code == 200  # signing in again works
    assert client.post("/v1/auth/logout-all").status_code == 401


def test_guessing_the_password_to_delete_an_account_is_throttled(
    client: TestClient, register: Any
) -> None:
    """A phone left unlocked (a valid access token) is no way to guess the password."""
    reg = register()
    codes = [_delete_me(client, reg["headers"], f"guess {i}").status_code for i in range(4)]
    assert codes == [422, 422, 422, 429]  # login_max_failures is 3 in the tests
    assert client.get("/v1/auth/me", headers=reg["headers"]).status_code == 200


def _me(client: TestClient, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return client.get("/v1/auth/me", headers=headers).status_code


def test_access_tokens_end_with_their_session(client: TestClient, register: Any) -> None:
    """Signing out stops the session's access token at once, not when it expires; the
    account's other sessions go on unless they were ended too."""
    reg = register()
    phone = _login(client, reg["password"]).json()
    laptop = _login(client, reg["password"]).json()
    assert (
        client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]}).status_code
        == 204
    )
    assert _me(client, phone["access_token"]) == 401
    assert _me(client, laptop["access_token"]) == 200
    # A rotated session keeps working with the new access token.
    rotated = client.post("/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert _me(client, rotated.json()["access_token"]) == 200
    # Reusing the rotated refresh token (a thief's copy) ends the session's access tokens too.
    assert _refresh(client, laptop["refresh_token"]) == 401
    assert _me(client, rotated.json()["access_token"]) == 401
    assert _me(client, reg["tokens"]["access_token"]) == 200
    assert client.post("/v1/auth/logout-all", headers=reg["headers"]).status_code == 204
    refused = client.get("/v1/auth/me", headers=reg["headers"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"


def test_a_new_password_ends_the_other_sessions_access_tokens(
    client: TestClient, register: Any
) -> None:
    reg = register()
    thief = _login(client, reg["password"]).json()["access_token"]
    changed = client.post(
        "/v1/auth/password",
        json={"current_password": reg["password"], "new_password": "a brand new passphrase"},
        headers=reg["headers"],
    )
    assert changed.status_code == 200
    assert _me(client, thief) == 401
    assert _me(client, reg["tokens"]["access_token"]) == 401
    assert _me(client, changed.json()["access_token"]) == 200


def test_an_access_token_naming_no_session_is_refused(
    client: TestClient, register: Any, settings: Settings
) -> None:
    import uuid

    from skinscan_common.security import issue_access_token, jwt_key

    reg = register()
    user_id = uuid.UUID(reg["user"]["id"])
    key = jwt_key(settings)
    unnamed = issue_access_token(user_id, key, 900, settings.jwt_issuer)
    assert _me(client, unnamed) == 401
    unknown_session = issue_access_token(user_id, key, 900, settings.jwt_issuer, uuid.uuid4())
    assert _me(client, unknown_session) == 401


def test_a_session_ends_at_its_maximum_age_however_often_it_is_refreshed(
    settings: Settings, session: Session
) -> None:
    user, tokens = accounts.register(session, settings, "old@example.com", "a long passphrase!")
    session.commit()
    rotated = accounts.refresh(session, settings, tokens.refresh_token)
    session.commit()
    aged = settings.model_copy(update={"session_max_age_s": 0})
    try:
        accounts.refresh(session, aged, rotated.refresh_token)
    except AppError as exc:
        assert exc.status_code == 401
    else:
        raise AssertionError("a session past its maximum age was refreshed")
    assert user.id


def test_sign_ups_from_one_address_are_limited(settings: Settings) -> None:
    """Every sign-up counts, a refused one too: probing which addresses have an account
    ("email taken") slows down like mass sign-ups do. Other addresses are not held up."""
    from skinscan.local_stack import create_app

    strict = settings.model_copy(update={"register_max_per_client": 3})
    app = create_app(strict, apply_migrations=False)

    def sign_up(client: TestClient, email: str) -> Any:
        body = {"email": email, "password": "correct horse battery"}
        return client.post("/v1/auth/register", json=body)

    with TestClient(app, client=("203.0.113.7", 5000)) as prober:
        codes = [sign_up(prober, f"user{i}@example.com").status_code for i in (1, 2, 1)]
        assert codes == [201, 201, 409]
        refused = sign_up(prober, "user3@example.com")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
    with TestClient(app, client=("198.51.100.2", 5000)) as neighbour:
        assert sign_up(neighbour, "user3@example.com").status_code == 201
