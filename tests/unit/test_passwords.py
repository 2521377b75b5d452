"""argon2id hashing and the password policy."""

from __future__ import annotations

import pytest

from skinscan_common.security import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    stored_as_typed,
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


@pytest.mark.parametrize(
    "password", ["ada@example.com1", "X ada@example.com", "my ADA@example.com!"]
)
def test_policy_rejects_a_password_holding_the_email(password: str) -> None:
    with pytest.raises(PasswordPolicyError):
        check_policy(password, "ada@example.com")


def test_the_same_visible_password_from_another_keyboard_verifies() -> None:
    """'é' typed as one code point (NFC) or as 'e' plus an accent (NFD) is one password."""
    composed, decomposed = "Pässwörter-sind-gut", "Pa\u0308sswo\u0308rter-sind-gut"
    assert composed != decomposed
    assert verify_password(hash_password(composed), decomposed)
    assert verify_password(hash_password(decomposed), composed)


def test_a_hash_of_the_password_as_typed_still_verifies() -> None:
    """Hashes made before normalisation hold the typed form: still accepted (then rehashed)."""
    from argon2 import PasswordHasher

    decomposed = "Pa\u0308sswo\u0308rter-sind-gut"
    legacy = PasswordHasher().hash(decomposed)
    assert verify_password(legacy, decomposed)
    assert stored_as_typed(decomposed) and not stored_as_typed("plain ascii pass")
