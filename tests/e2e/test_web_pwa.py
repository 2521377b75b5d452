"""Installability (the checks Lighthouse's installable audit makes), layout and accessibility."""

from __future__ import annotations

import io
import time
from urllib.parse import urlsplit

import pytest

pytest.importorskip("playwright.sync_api")
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.web_helpers import new_context, screenshot

pytestmark = pytest.mark.browser


def test_manifest_and_icons(page: Page) -> None:
    page.goto("/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href == "/manifest.webmanifest"
    response = page.request.get(href)
    assert response.ok
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] and manifest["short_name"] == "SkinScan"
    assert manifest["display"] in {"standalone", "fullscreen", "minimal-ui"}
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    # WCAG 1.3.4: the installed app turns with the phone (a locked orientation shuts out people
    # whose device is mounted sideways).
    assert manifest.get("orientation", "any") == "any"
    assert manifest["theme_color"].startswith("#") and manifest["background_color"]
    assert page.request.get(manifest["start_url"]).ok

    sizes = {}
    for icon in manifest["icons"]:
        got = page.request.get(icon["src"])
        assert got.ok, icon["src"]
        assert got.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(got.body())) as img:
            assert f"{img.width}x{img.height}" == icon["sizes"]
            assert img.format == "PNG"
        sizes.setdefault(icon.get("purpose", "any"), set()).add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes["any"]
    assert "512x512" in sizes["maskable"]
    # The theme colour the page declares matches the manifest's.
    meta = page.locator("meta[name=theme-color]").get_attribute("content")
    assert meta == manifest["theme_color"]


def test_service_worker_controls_the_page_and_starts_offline(
    browser: Browser, web_server: str
) -> None:
    context = new_context(browser, web_server)
    try:
        page = context.new_page()
        page.goto("/")
        sw = page.request.get("/sw.js")
        assert sw.headers["cache-control"] == "no-cache"
        assert sw.headers["service-worker-allowed"] == "/"
        assert sw.headers["content-type"].startswith("text/javascript")
        # Registered, activated, and (clients.claim) controlling this page.
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
        assert scope == f"{web_server}/"

        # API answers are never cached: call the API, then look into every cache.
        page.evaluate("() => fetch('/v1/auth/me').then(r => r.status)")
        cached = page.evaluate(
            """async () => {
                const urls = [];
                for (const name of await caches.keys()) {
                    const cache = await caches.open(name);
                    for (const req of await cache.keys()) urls.push(new URL(req.url).pathname);
                }
                return urls;
            }"""
        )
        assert "/js/app.js" in cached and "/index.html" in cached and "/" in cached
        assert not [u for u in cached if u.startswith(("/v1", "/local-objects", "/health"))]

        # Offline, the app shell still starts and says it is offline.
        context.set_offline(True)
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to SkinScan")
        expect(page.locator("#offline-banner")).to_be_visible()
        screenshot(page, "12-offline-start")
    finally:
        context.close()


def test_installed_app_starts_when_the_network_never_answers(
    browser: Browser, web_server: str
) -> None:
    """A connection that is up but never answers (a weak signal, a captive portal): the app
    starts from the cached shell after a short wait instead of showing a blank page."""
    context = new_context(browser, web_server)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
        shell = page.evaluate(
            """async () => {
                const cache = await caches.open((await caches.keys())[0]);
                return (await cache.keys()).map((r) => new URL(r.url).pathname);
            }"""
        )
        assert "/js/app.js" in shell
        page.close()

        held: list[Route] = []
        context.route(lambda url: urlsplit(url).path in shell, lambda route: held.append(route))
        page = context.new_page()
        started = time.monotonic()
        page.goto("/", wait_until="commit", timeout=15_000)
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Welcome to SkinScan", timeout=15_000
        )
        elapsed = time.monotonic() - started
        assert held, "the shell requests were not held: the test proves nothing"
        assert elapsed < 10, f"the cached shell took {elapsed:.1f} s"
    finally:
        context.close()


@pytest.mark.parametrize("width,height", [(360, 740), (390, 844), (430, 932), (1280, 800)], ids=str)
def test_layout_fits_phones_and_desktop(
    browser: Browser, web_server: str, width: int, height: int
) -> None:
    context = new_context(browser, web_server, {"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.get_by_role("button", name="Continue as guest").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check a skin spot")
        for screen in ("#/home", "#/signup", "#/signin"):
            page.goto(f"/{screen}")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{screen} scrolls sideways at {width}px"
            bar = page.locator(".app-bar").bounding_box()
            assert bar and bar["height"] <= 72, "the app bar should stay on one line"
        if width == 1280:
            screenshot(page, "13-desktop")
    finally:
        context.close()


CONTRAST_JS = """(selectors) => {
    const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = (c) => {
        const [r, g, b] = c.map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (bg && !bg.startsWith('rgba(0, 0, 0, 0)') && bg !== 'transparent') return rgb(bg);
        }
        return [255, 255, 255];
    };
    const out = {};
    for (const sel of selectors) {
        const el = document.querySelector(sel);
        if (!el) continue;
        const a = lum(rgb(getComputedStyle(el).color));
        const b = lum(background(el));
        out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }
    return out;
}"""


def test_accessibility_basics(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    # Every visible form control has a label.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((e) => e.type !== 'hidden' && e.labels.length === 0
                && !e.getAttribute('aria-label'))
            .map((e) => e.outerHTML)"""
    )
    assert not unlabelled
    # Text contrast of the main elements meets WCAG AA (4.5:1).
    ratios = page.evaluate(
        CONTRAST_JS,
        [".lead", "label", ".button.primary", ".button:not(.primary)", ".app-nav a", "h1",
         ".app-footer p", ".card-title"],
    )  # fmt: skip
    assert ratios and all(r >= 4.5 for r in ratios.values()), ratios
    # Keyboard focus is visible: tab through the page, every stop shows an outline.
    seen = 0
    for _ in range(8):
        page.keyboard.press("Tab")
        style = page.evaluate(
            """() => {
                const e = document.activeElement;
                const s = getComputedStyle(e);
                return {tag: e.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)};
            }"""
        )
        if style["tag"] == "BODY":
            continue
        seen += 1
        assert style["outline"] != "none" and style["width"] >= 2, style
    assert seen >= 6
    # Status messages are announced.
    assert page.locator("#status[aria-live=polite]").count() == 1
