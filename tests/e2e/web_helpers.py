"""Helpers shared by the browser tests (constants, contexts, screenshots, common steps)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import uuid
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SKINSCAN_SCREENSHOT_DIR", REPO / "docs" / "screenshots"))
CHROMIUM = os.environ.get("SKINSCAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
ACCESS_TOKEN_TTL_S = 1
TOKEN_LEEWAY_S = 5  # skinscan_common.security.tokens verifies with this leeway
PASSWORD = "correct horse battery staple"


def new_context(browser: Browser, server: str, viewport: dict[str, int] = PHONE) -> BrowserContext:
    context = browser.new_context(
        base_url=server,
        viewport=viewport,
        device_scale_factor=1,
        is_mobile=viewport["width"] < 500,
        has_touch=viewport["width"] < 500,
        accept_downloads=True,
        locale="en-GB",
        timezone_id="UTC",
    )
    context.set_default_timeout(20_000)
    return context


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save a small PNG of the current screen in docs/screenshots (palette, optimised)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = page.screenshot(full_page=full_page, animations="disabled", caret="hide")
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        SCREENSHOTS / f"{name}.png", optimize=True
    )


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page: Page, email: str | None = None, *, remember: bool = False) -> str:
    """Create an account through the UI; ends on the home screen."""
    email = email or unique_email("web")
    page.goto("/#/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if remember:
        page.get_by_label("Stay signed in on this device").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check a skin spot")
    return email


def upload(page: Page, path: Path | str) -> None:
    """Pick a file on the home screen and press "Check this photo"."""
    page.locator("#photo-file").set_input_files(str(path))
    expect(page.locator(".preview-img")).to_be_visible()
    page.get_by_role("button", name="Check this photo").click()


def wait_for_result(page: Page) -> str:
    """Wait until a result (with its heatmap loaded) is on screen; returns the verdict."""
    verdict = page.locator("section.verdict")
    expect(verdict).to_be_visible(timeout=60_000)
    expect(page.locator(".heatmap-stage[data-loaded=true]")).to_be_visible()
    return verdict.get_attribute("data-verdict") or ""


def canned_prediction(
    verdict: str = "benign", p_malignant: float = 0.12, prediction_id: str | None = None
) -> dict:
    """A finished prediction as the API answers it (no model needed; tiny data-URL heatmap)."""
    grey = Image.linear_gradient("L").resize((64, 48))
    buf = io.BytesIO()
    grey.save(buf, format="PNG")
    heatmap = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {
        "id": prediction_id or str(uuid.uuid4()),
        "status": "done",
        "verdict": verdict,
        "p_malignant": p_malignant,
        "threshold": 0.5,
        "confidence": 0.88,
        "top_class": "nv",
        "probabilities": {"nv": 0.71, "mel": 0.09, "bkl": 0.08, "bcc": 0.05, "akiec": 0.03,
                          "df": 0.02, "vasc": 0.02},
        "reason": "the malignancy probability is below the decision threshold",
        "model_version": "canned-for-test",
        "created_at": "2026-12-07T10:00:05Z",
        "heatmap_url": heatmap,
    }  # fmt: skip


def fake_history(page: Page, items: list[dict]) -> dict[str, dict]:
    """Answer the history list, each result's detail and its DELETE from ``items`` (a mutable
    server of made-up results); returns them by id."""
    by_id = {item["id"]: item for item in items}

    def listing(route: Route) -> None:
        route.fulfill(json={"items": list(by_id.values()), "next_cursor": None})

    def one(route: Route) -> None:
        rid = route.request.url.rsplit("/", 1)[1]
        if route.request.method == "DELETE":
            by_id.pop(rid, None)
            route.fulfill(status=204, body="")
        elif rid in by_id:
            route.fulfill(json=by_id[rid])
        else:
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "gone"}})

    page.route(re.compile(r".*/v1/predictions(\?.*)?$"), listing)
    page.route(re.compile(r".*/v1/predictions/[0-9a-f-]+$"), one)
    return by_id
