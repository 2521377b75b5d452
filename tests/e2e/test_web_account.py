"""The Account screen's password change and "Sign out on all devices", in headless Chromium
against a real `skinscan serve` (POST /v1/auth/password, POST /v1/auth/logout-all)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.web_helpers import PASSWORD, new_context, sign_up

pytestmark = pytest.mark.browser

NEW_PASSWORD = "purple walrus under the lighthouse"
SESSION_ENDED = "Your session has ended. Please sign in again."


def _heading(page: Page):
    return page.get_by_role("heading", level=1)


def _stored_refresh(page: Page) -> str | None:
    return page.evaluate(
        "() => localStorage.getItem('skinscan.refresh_token')"
        " ?? sessionStorage.getItem('skinscan.refresh_token')"
    )


def _sign_in(page: Page, email: str, password: str, *, remember: bool = False) -> None:
    """Sign in through the UI (from wherever the page is); does not wait for the outcome."""
    page.goto("/#/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    if remember:
        page.get_by_label("Stay signed in on this device").check()
    page.get_by_role("button", name="Sign in", exact=True).click()


@contextmanager
def _other_device(browser: Browser, server: str, email: str, **kw: bool) -> Iterator[Page]:
    """A second browser (own storage) signed in to the same account, on the Scan screen."""
    context = new_context(browser, server)
    try:
        other = context.new_page()
        errors: list[str] = []
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        other.errors = errors  # type: ignore[attr-defined]
        _sign_in(other, email, PASSWORD, **kw)
        expect(_heading(other)).to_have_text("Check a skin spot")
        yield other
    finally:
        context.close()


def test_change_password(page: Page, browser: Browser, web_server: str) -> None:
    email = sign_up(page)
    with _other_device(browser, web_server, email) as other:
        page.get_by_role("link", name="Account").click()
        expect(_heading(page)).to_have_text("Account")
        current = page.get_by_label("Current password", exact=True)
        new = page.get_by_label("New password", exact=True)
        submit = page.get_by_role("button", name="Change password")
        expect(current).to_have_attribute("autocomplete", "current-password")
        expect(new).to_have_attribute("autocomplete", "new-password")
        before = _stored_refresh(page)
        assert before

        # Too short: said by the form itself, nothing is sent.
        current.fill(PASSWORD)
        new.fill("short")
        submit.click()
        problem = page.locator(".field-error:visible")
        expect(problem).to_have_text("Choose a password of at least 10 characters.")
        expect(new).to_be_focused()
        expect(new).to_have_attribute("aria-invalid", "true")

        # Wrong current password: said by that field, which gets focus.
        current.fill("not my password at all")
        new.fill(NEW_PASSWORD)
        with page.expect_response("**/v1/auth/password") as answer:
            submit.click()
        assert answer.value.status == 422
        expect(problem).to_have_text("That is not your current password.")
        expect(current).to_be_focused()
        expect(current).to_have_attribute("aria-invalid", "true")
        expect(new).not_to_have_attribute("aria-invalid", "true")
        described = current.get_attribute("aria-describedby") or ""
        assert page.locator(f"#{described.split()[0]}").inner_text() == (
            "That is not your current password."
        )

        # A new password the server refuses (it holds the email): its reason, by that field.
        # Sent with Enter from the field itself, as a keyboard user would.
        current.fill(PASSWORD)
        new.fill(email)
        with page.expect_response("**/v1/auth/password") as answer:
            new.press("Enter")
        assert answer.value.status == 422
        expect(problem).to_have_text("Password must not contain the email address.")
        expect(new).to_be_focused()
        expect(current).not_to_have_attribute("aria-invalid", "true")

        # The right one: this device keeps a session (a new refresh token), the message has focus.
        new.fill(NEW_PASSWORD)
        with page.expect_response("**/v1/auth/password") as answer:
            submit.click()
        assert answer.value.status == 200
        done = page.get_by_role("status").filter(has_text="Password changed.")
        expect(done).to_have_text("Password changed. You were signed out on your other devices.")
        expect(done).to_be_focused()
        expect(problem).to_have_count(0)
        expect(current).to_have_value("")
        expect(new).to_have_value("")
        after = _stored_refresh(page)
        assert after and after != before
        assert page.request.post("/v1/auth/refresh", data={"refresh_token": before}).status == 401

        # Still signed in after a reload (the new refresh token starts the session again).
        page.reload()
        expect(_heading(page)).to_have_text("Account")
        expect(page.locator(".account-email")).to_have_text(email)

        # The other device's session ended: its next start lands on sign-in, and says why.
        other.reload()
        expect(_heading(other)).to_have_text("Welcome to SkinScan")
        expect(other.get_by_role("status").filter(has_text=SESSION_ENDED)).to_be_visible()
        assert _stored_refresh(other) is None
        assert not other.errors, other.errors  # type: ignore[attr-defined]

    # The old password no longer signs in, the new one does.
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    with page.expect_response("**/v1/auth/login") as login:
        _sign_in(page, email, PASSWORD)
    assert login.value.status == 401
    expect(page.locator(".form-error")).to_be_visible()
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    _sign_in(page, email, NEW_PASSWORD)
    expect(_heading(page)).to_have_text("Check a skin spot")
    assert not page.errors, page.errors


def test_too_many_wrong_current_passwords_are_refused_in_plain_words(page: Page) -> None:
    """Guesses of the current password are throttled like logins: the 429 says when to retry."""
    sign_up(page)
    page.goto("/#/account")
    current = page.get_by_label("Current password", exact=True)
    statuses: list[int] = []
    for _ in range(8):  # the server refuses after login_max_failures (5; 3 in some configs)
        current.fill("not my password at all")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        with page.expect_response("**/v1/auth/password") as answer:
            page.get_by_role("button", name="Change password").click()
        statuses.append(answer.value.status)
        if statuses[-1] != 422:
            break
    assert statuses[-1] == 429, statuses
    alert = page.locator(".form-error")
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("Too many requests right now")
    expect(alert).to_contain_text("try again in")
    expect(alert).to_be_focused()
    # Not a field problem: no field is marked, and the form can be sent again.
    expect(page.locator(".field-error:visible")).to_have_count(0)
    expect(page.get_by_role("button", name="Change password")).to_be_enabled()
    assert not page.errors, page.errors


def test_sign_out_on_all_devices(page: Page, browser: Browser, web_server: str) -> None:
    email = sign_up(page)
    with _other_device(browser, web_server, email, remember=True) as other:
        page.get_by_role("link", name="Account").click()
        expect(_heading(page)).to_have_text("Account")
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.url) if "/logout-all" in r.url else None)

        # It asks first; Escape (like Cancel) backs out without sending anything.
        ask = page.get_by_role("button", name="Sign out on all devices")
        ask.click()
        yes = page.get_by_role("button", name="Yes, sign out everywhere")
        expect(yes).to_be_focused()
        expect(page.get_by_role("group", name="Confirm signing out on all devices")).to_be_visible()
        page.keyboard.press("Escape")
        expect(yes).to_be_hidden()
        expect(ask).to_be_focused()
        assert not sent

        token = _stored_refresh(page)
        assert token
        ask.click()
        with page.expect_response("**/v1/auth/logout-all") as answer:
            yes.click()
        assert answer.value.status == 204
        expect(_heading(page)).to_have_text("Welcome to SkinScan")
        expect(page.get_by_text("You are signed out on all your devices.")).to_be_visible()
        assert _stored_refresh(page) is None
        assert page.request.post("/v1/auth/refresh", data={"refresh_token": token}).status == 401

        # The other device, still open: its next API call ends on sign-in. Its access token
        # would be accepted until it expires (checked by signature, ~6 s here), so that call is
        # answered 401 once, as it would be after that; the refresh that follows is the
        # server's own answer for the revoked refresh token.
        expired: list[str] = []

        def expire_once(route: Route) -> None:
            if expired:
                route.continue_()
            else:
                expired.append(route.request.url)
                route.fulfill(status=401, json={"error": {"code": "token_expired", "message": ""}})

        other.route("**/v1/predictions*", expire_once)
        with other.expect_response("**/v1/auth/refresh") as refresh:
            other.get_by_role("link", name="History").click()
        assert refresh.value.status == 401
        expect(_heading(other)).to_have_text("Welcome to SkinScan")
        expect(other.get_by_role("status").filter(has_text=SESSION_ENDED)).to_be_visible()
        assert _stored_refresh(other) is None
        expect(other.get_by_role("link", name="History")).to_be_hidden()
        assert not other.errors, other.errors  # type: ignore[attr-defined]
    assert not page.errors, page.errors
