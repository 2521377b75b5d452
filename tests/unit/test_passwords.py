"""argon2id hashing and the password policy."""

from __future__ import annotations

import pytest

from skinscan_common.security import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    verify_password,
)


def test_hash_is_argon2id_and_verifies() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "wrong horse battery")


def test_unknown_user_never_verifies() -> None:
    assert not verify_password(None, "anything at all")


def test_corrupt_hash_does_not_raise() -> None:
    assert not verify_password("not-a-hash", "whatever password")


@pytest.mark.parametrize(
    "password",
    ["short", "aaaaaaaaaaaaaa", " leading space 123", "ada@example.com", "x" * 300],
)
def test_policy_rejects(password: str) -> None:
    with pytest.raises(PasswordPolicyError):
        check_policy(password, "ada@example.com")


def test_policy_accepts_passphrase() -> None:
    check_policy("correct horse battery", "ada@example.com")
