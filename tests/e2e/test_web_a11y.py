"""Accessibility of the web app beyond the basics (test_web_pwa.py): keyboard, focus, what
screen readers hear, contrast, and reflow at 200 % text size, at 390x844 in Chromium."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect

from tests.e2e.web_helpers import (
    canned_prediction,
    fake_history,
    new_context,
    sign_up,
    upload,
    wait_for_result,
)

pytestmark = pytest.mark.browser


def _heading(page: Page):
    return page.get_by_role("heading", level=1)


def _focus_in_main(page: Page) -> bool:
    return page.evaluate("() => document.getElementById('view').contains(document.activeElement)")


def _row_link(page: Page, item: dict):
    return page.locator(f'.history-item[data-id="{item["id"]}"] a.history-link')


def _history_item(seconds: int, verdict: str = "benign") -> dict:
    item = canned_prediction(verdict, 0.12, str(uuid.uuid4()))
    item["created_at"] = f"2026-12-07T10:00:{seconds:02d}Z"
    return item


def test_skip_link_moves_focus_to_the_screen_and_keeps_the_route(page: Page) -> None:
    """`#view` is not a screen: following the skip link must not send the person elsewhere."""
    page.goto("/")
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    sign_up(page)
    for route, heading in [("#/history", "Your results"), ("#/account", "Account"),
                           ("#/home", "Check a skin spot")]:  # fmt: skip
        page.goto(f"/{route}")
        page.reload()
        expect(_heading(page)).to_have_text(heading)
        page.wait_for_selector("html[data-ready=true]")
        page.keyboard.press("Tab")
        expect(page.locator(".skip-link")).to_be_focused()
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)  # a wrong route would have re-rendered by now
        expect(_heading(page)).to_have_text(heading)
        assert page.evaluate("() => location.hash") == route
        expect(_heading(page)).to_be_focused()
        page.keyboard.press("Tab")  # and the next stop is in the screen, past the nav
        assert _focus_in_main(page), route
    assert not page.errors, page.errors


# Contrast of the text in an element against what is really painted behind it: the
# translucent backgrounds of the element and its ancestors blended down to the page.
CONTRAST_JS = """(sel) => {
    const el = document.querySelector(sel);
    const parse = (s) => {
        const v = s.match(/[\\d.]+/g).map(Number);
        return [v[0], v[1], v[2], v[3] ?? 1];
    };
    // `top` (with alpha) painted over the opaque colour `under`.
    const over = (top, under) => under.map((u, i) => top[i] * top[3] + u * (1 - top[3]));
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
        layers.push(parse(getComputedStyle(e).backgroundColor));
    }
    let bg = [255, 255, 255];
    for (const layer of layers.reverse()) bg = over(layer, bg);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const lum = (c) => {
        const [r, g, b] = c.map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [a, b] = [lum(fg), lum(bg)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def test_current_nav_link_has_enough_contrast_and_a_marker(page: Page) -> None:
    sign_up(page)
    for route in ("#/home", "#/history", "#/account"):
        page.goto(f"/{route}")
        current = page.locator('.app-nav a[aria-current="page"]')
        expect(current).to_have_count(1)
        ratio = page.evaluate(CONTRAST_JS, '.app-nav a[aria-current="page"]')
        assert ratio >= 4.5, f"{route}: current nav link {ratio:.2f}:1"
        other = page.evaluate(CONTRAST_JS, ".app-nav a:not([aria-current]):not([hidden])")
        assert other >= 4.5, f"{route}: other nav links {other:.2f}:1"
        # Not told by colour alone: the current link is also underlined or barred.
        marker = current.evaluate(
            """(e) => { const s = getComputedStyle(e);
                return s.textDecorationLine.includes('underline') || s.boxShadow !== 'none'
                    || parseFloat(s.borderBottomWidth) > 0; }"""
        )
        assert marker, route


# Whatever sticks out past the right edge of the viewport (or is cut by its own box).
OVERFLOW_JS = """() => {
    const W = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('[hidden], .visually-hidden, .skip-link, noscript, .gauge')) continue;
        const r = el.getBoundingClientRect();
        if (!r.width) continue;
        if (r.right > W + 1 || r.left < -1) {
            const name = `${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className}`;
            out.push(`${name} [${Math.round(r.left)}..${Math.round(r.right)}]`);
        }
    }
    return { scrollWidth: document.scrollingElement.scrollWidth, W, out: out.slice(0, 10) };
}"""


def _assert_reflows(page: Page, where: str) -> None:
    page.wait_for_timeout(300)
    got = page.evaluate(OVERFLOW_JS)
    assert got["scrollWidth"] <= got["W"] and not got["out"], f"{where} at 200% text: {got}"


def test_everything_reflows_at_200_percent_text(
    browser: Browser, web_server: str, lesion_images: list[Path]
) -> None:
    """WCAG 1.4.4 / 1.4.10: a phone's largest text setting (root font-size 200 %) at 390 px
    must not make anything scroll sideways or run off the screen."""
    context = new_context(browser, web_server)
    context.add_init_script(
        "document.addEventListener('DOMContentLoaded', () => {"
        " document.documentElement.style.fontSize = '200%'; });"
    )
    try:
        page = context.new_page()
        page.goto("/#/signin")
        expect(_heading(page)).to_have_text("Welcome to SkinScan")
        _assert_reflows(page, "sign in")
        sign_up(page)
        _assert_reflows(page, "home")
        page.get_by_text("Tips for a good photo").click()
        _assert_reflows(page, "home with tips")

        answer = canned_prediction("benign", 0.12)
        page.route("**/v1/predict", lambda route: route.fulfill(json=answer))
        fake_history(page, [answer, _history_item(40, "malignant"), _history_item(41, "unknown")])
        upload(page, lesion_images[0])
        wait_for_result(page)
        page.get_by_text("Details", exact=True).click()
        _assert_reflows(page, "result")
        page.get_by_text("Side by side", exact=True).click()
        _assert_reflows(page, "result side by side")
        page.get_by_role("button", name="Delete", exact=True).click()
        _assert_reflows(page, "result delete confirmation")

        page.get_by_role("link", name="History").click()
        expect(page.locator(".history-item")).to_have_count(3)
        _assert_reflows(page, "history")
        page.locator(".history-item [data-action=delete]").first.click()
        _assert_reflows(page, "history delete confirmation")

        page.get_by_role("link", name="Account").click()
        expect(_heading(page)).to_have_text("Account")
        _assert_reflows(page, "account")
    finally:
        context.close()


def test_deleting_a_history_row_moves_focus_and_escape_cancels(page: Page) -> None:
    """After "Yes, delete" focus goes to the next row (else the previous one, else the empty
    card), never to <body>; Escape cancels the inline confirmation like Cancel does."""
    sign_up(page)
    items = [_history_item(s) for s in (10, 20, 30)]
    fake_history(page, items)
    page.get_by_role("link", name="History").click()
    rows = page.locator(".history-item")
    expect(rows).to_have_count(3)

    delete = rows.nth(1).locator("[data-action=delete]")
    delete.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Yes, delete")).to_be_focused()
    page.keyboard.press("Escape")
    expect(rows.nth(1).locator(".confirm-question")).to_be_hidden()
    expect(delete).to_be_focused()

    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # Yes, delete: the middle row goes, focus to the next one
    expect(rows).to_have_count(2)
    expect(_row_link(page, items[2])).to_be_focused()

    rows.nth(1).locator("[data-action=delete]").focus()  # the last row: focus to the previous
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(_row_link(page, items[0])).to_be_focused()

    rows.first.locator("[data-action=delete]").focus()  # the only row: focus to the empty card
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No results yet.")).to_be_visible()
    assert page.evaluate("() => document.activeElement.closest('.empty') !== null")

    # The same confirmation on the result screen: Escape cancels it there too.
    answer = _history_item(50)
    fake_history(page, [answer])
    page.goto(f"/#/result/{answer['id']}")
    expect(page.locator("section.verdict")).to_be_visible()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("button", name="Yes, delete")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Yes, delete")).to_be_hidden()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_focused()
    assert not page.errors, page.errors


def test_history_delete_buttons_have_distinct_names(page: Page) -> None:
    """Two results checked in the same minute: a screen reader's list of buttons must still
    tell their Delete buttons apart."""
    sign_up(page)
    fake_history(page, [_history_item(5), _history_item(47), _history_item(47, "malignant")])
    page.get_by_role("link", name="History").click()
    buttons = page.locator(".history-item [data-action=delete]")
    expect(buttons).to_have_count(3)
    names = [b.get_attribute("aria-label") for b in buttons.all()]
    assert len(set(names)) == 3, names
    assert all(n and n.startswith("Delete the result of ") for n in names), names


STATUS_LOG_JS = """() => {
    window.__said = [];
    const region = document.getElementById('status');
    new MutationObserver(() => { if (region.textContent) window.__said.push(region.textContent); })
        .observe(region, { childList: true, characterData: true, subtree: true });
}"""


@pytest.mark.parametrize(
    "verdict,p,said",
    [
        ("benign", 0.12, "Likely benign. 12% estimated probability of malignancy."),
        ("malignant", 0.83, "Possibly malignant. 83% estimated probability of malignancy."),
        ("unknown", 0.4, "Unknown — not recognised as a skin lesion."),
    ],
)
def test_the_verdict_is_announced(
    page: Page, lesion_images: list[Path], verdict: str, p: float, said: str
) -> None:
    """Screen-reader users hear the outcome, after the screen's title (not instead of it)."""
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    answer = canned_prediction(verdict, p)
    page.route("**/v1/predict", lambda route: route.fulfill(json=answer))
    page.evaluate(STATUS_LOG_JS)
    upload(page, lesion_images[0])
    wait_for_result(page)
    page.wait_for_timeout(500)  # the live region is written after a short tick
    log = page.evaluate("() => window.__said")
    assert log, "nothing was announced"
    assert log[-1].startswith("Result"), log
    assert said in log[-1], log
