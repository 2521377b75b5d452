"""The web app's flows in headless Chromium at 390x844 against a real `skinscan serve`."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from PIL import Image, ImageDraw
from playwright.sync_api import Page, Response, Route, expect

from tests.e2e.web_helpers import (
    ACCESS_TOKEN_TTL_S,
    TOKEN_LEEWAY_S,
    canned_prediction,
    screenshot,
    sign_up,
    upload,
    wait_for_result,
)
from tests.engine_fixtures import shipped_model_path

pytestmark = pytest.mark.browser

VERDICT_LABELS = {
    "benign": "Likely benign",
    "malignant": "Possibly malignant",
    "unknown": "Unknown",
}


def _heading(page: Page):
    return page.get_by_role("heading", level=1)


def _assert_heatmap_drawn(page: Page) -> None:
    """The heatmap layer is visible, has a size, and is not blank."""
    layer = page.locator(".heatmap-stack .heatmap-layer")
    expect(layer).to_be_visible()
    box = layer.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    distinct = page.evaluate(
        """() => {
            const c = document.querySelector('.heatmap-stack canvas.heatmap-layer');
            if (!c) return 2;  // server overlay image fallback
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 97) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
            return seen.size;
        }"""
    )
    assert distinct > 1, "the heatmap layer is a flat colour"


def test_signed_in_flow_upload_result_history_pdf_delete(
    page: Page, lesion_images: list[Path], tmp_path: Path
) -> None:
    page.goto("/")
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    screenshot(page, "01-sign-in")

    page.get_by_role("link", name="Create an account").click()
    expect(_heading(page)).to_have_text("Create your account")
    screenshot(page, "02-sign-up")
    sign_up(page)
    screenshot(page, "03-home")

    upload(page, lesion_images[0])
    verdict = wait_for_result(page)
    assert verdict in VERDICT_LABELS
    assert re.search(r"#/result/[0-9a-f-]{36}$", page.url)
    expect(page.locator("section.verdict")).to_contain_text(VERDICT_LABELS[verdict])
    expect(page.get_by_text("This is not a diagnosis")).to_be_visible()
    if verdict != "unknown":
        expect(page.get_by_role("meter")).to_be_visible()
    _assert_heatmap_drawn(page)
    expect(page.get_by_test_id("heatmap-caveat")).to_contain_text("not as an outline of the spot")
    screenshot(page, "04-result", full_page=True)

    # Details: the closest diagnosis with its own probability, the first row of the table.
    page.get_by_text("Details", exact=True).click()
    top = page.locator("table.probs tbody tr").first
    expect(page.locator("dl.facts")).to_contain_text(top.locator("th").inner_text())
    top_p = page.locator("dl.facts dt", has_text="Probability of that diagnosis").locator("+ dd")
    texts = (top_p.inner_text(), top.locator("td").inner_text())
    shown, table = (float(t.rstrip("%")) for t in texts)
    assert abs(shown - table) <= 0.5  # the same figure, rounded to whole percent
    # The model's own terms are in Details, not in the verdict a person reads first.
    expect(page.locator("section.verdict")).not_to_contain_text("p_malignant")
    expect(page.locator("dl.facts")).to_contain_text("How the model decided")
    page.get_by_text("Details", exact=True).click()

    # Opacity slider drives the heatmap layer; side-by-side shows photo and overlay.
    page.get_by_label("Heatmap opacity").fill("100")
    assert page.locator(".heatmap-stack .heatmap-layer").evaluate("e => e.style.opacity") == "1"
    page.get_by_text("Side by side", exact=True).click()
    expect(page.locator(".heatmap-side figure")).to_have_count(2)
    expect(page.locator(".heatmap-side")).to_be_visible()
    page.locator(".heatmap-side").scroll_into_view_if_needed()
    screenshot(page, "05-result-side-by-side")

    # The PDF report downloads and is a real PDF that names the verdict.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download PDF report").click()
    pdf_path = tmp_path / "report.pdf"
    download_info.value.save_as(pdf_path)
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-")
    pypdf = pytest.importorskip("pypdf")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "SkinScan report" in text and "not a diagnosis" in text
    assert VERDICT_LABELS[verdict] in text

    # History lists it with its thumbnail, verdict and date.
    page.get_by_role("link", name="History").click()
    expect(_heading(page)).to_have_text("Your results")
    items = page.locator(".history-item")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-verdict", verdict)
    expect(items.first.locator("time")).not_to_be_empty()
    # Each row's Delete button says which result it deletes (screen readers list them all).
    named = re.compile(r"^Delete the result of \d")
    expect(items.first.get_by_role("button", name=named)).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.history-item .thumb');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    screenshot(page, "06-history")

    # Open it again from history (a fresh GET), then delete it there.
    items.first.locator("a.history-link").click()
    wait_for_result(page)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Yes, delete").click()
    expect(_heading(page)).to_have_text("Your results")
    expect(page.get_by_text("The result was deleted.")).to_be_visible()
    expect(page.locator(".history-item")).to_have_count(0)
    expect(page.get_by_text("No results yet.")).to_be_visible()
    assert not page.errors, page.errors


def test_account_sign_out_and_delete(page: Page, lesion_images: list[Path]) -> None:
    email = sign_up(page)
    upload(page, lesion_images[1])
    wait_for_result(page)

    page.get_by_role("link", name="Account").click()
    expect(_heading(page)).to_have_text("Account")
    expect(page.locator(".account-email")).to_have_text(email)
    screenshot(page, "07-account")

    # Sign out revokes the refresh token on the server and forgets it here.
    token = page.evaluate("() => sessionStorage.getItem('skinscan.refresh_token')")
    assert token
    with page.expect_response("**/v1/auth/logout") as logout:
        page.get_by_role("button", name="Sign out", exact=True).click()
    assert logout.value.status == 204
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('skinscan.refresh_token')") is None
    reuse = page.request.post("/v1/auth/refresh", data={"refresh_token": token})
    assert reuse.status == 401

    # Sign in again, then delete the account with everything in it.
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    expect(_heading(page)).to_have_text("Check a skin spot")
    page.goto("/#/account")
    delete = page.get_by_role("button", name="Delete my account and all my data")
    expect(delete).to_be_disabled()
    page.get_by_label("I understand that everything will be deleted").check()
    delete.click()  # no password typed: asked for, nothing sent
    expect(page.get_by_text("Enter your password to delete your account.")).to_be_visible()
    password = page.get_by_label("Your password")
    expect(password).to_be_focused()
    password.fill("not my password at all")
    with page.expect_response("**/v1/auth/me") as refused:
        delete.click()
    assert refused.value.status == 422
    expect(page.get_by_text("That is not your password. Nothing was deleted.")).to_be_visible()
    password.fill("correct horse battery staple")
    with page.expect_response("**/v1/auth/me") as gone:
        delete.click()
    assert gone.value.status == 204
    expect(page.get_by_text("Your account and all its data were deleted.")).to_be_visible()
    login = page.request.post(
        "/v1/auth/login", data={"email": email, "password": "correct horse battery staple"}
    )
    assert login.status == 401
    assert not page.errors, page.errors


def test_guest_flow(page: Page, lesion_images: list[Path]) -> None:
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    expect(_heading(page)).to_have_text("Check a skin spot")
    expect(page.get_by_role("link", name="History")).to_be_hidden()
    expect(page.get_by_text("As a guest, your result is shown but not saved.")).to_be_visible()
    screenshot(page, "08-guest-home")

    upload(page, lesion_images[2])
    verdict = wait_for_result(page)
    assert page.url.endswith("#/result")
    expect(page.locator("section.verdict")).to_contain_text(VERDICT_LABELS[verdict])
    _assert_heatmap_drawn(page)
    # Nothing stored: no PDF or delete for guests, and no history to reach.
    expect(page.get_by_role("button", name="Download PDF report")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    expect(page.get_by_text("As a guest this result is not saved.")).to_be_visible()
    page.goto("/#/history")
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    expect(page.get_by_text("Please sign in to see that page.")).to_be_visible()
    assert not page.errors, page.errors


def test_refusals_are_said_in_plain_words(page: Page) -> None:
    """What the API's validation refuses reaches a person in words they can act on, not the
    validator's own (an email the browser accepts but the server does not; a cut-off link)."""
    page.goto("/#/signup")
    page.get_by_label("Email").fill("x@y")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Create account").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Enter a valid email address, like name@example.com.")
    expect(alert).not_to_contain_text("invalid request")
    page.get_by_role("button", name="Create account").click()  # the form still works

    sign_up(page)
    page.goto("/#/result/not-a-real-id")
    expect(page.get_by_text("This result does not exist or was deleted.")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("valid UUID")
    assert not page.errors, page.errors


def test_text_file_named_jpg_gets_a_clear_message(page: Page, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("These are my notes, not a photo.\n" * 20)
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    page.locator("#photo-file").set_input_files(str(fake))
    expect(page.get_by_text("No preview: this file may not be a photo.")).to_be_visible()
    expect(page.locator(".preview-img")).to_have_count(0)  # no broken-image icon
    page.get_by_role("button", name="Check this photo").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This photo can't be checked")
    expect(alert).to_contain_text("Choose a JPEG or PNG picture")
    expect(alert.get_by_role("button", name="Try again")).to_have_count(0)
    expect(alert.get_by_text("Choose another photo")).to_be_visible()
    expect(page.get_by_role("button", name="Check this photo")).to_be_enabled()
    screenshot(page, "09-error-not-a-photo")


def test_failed_upload_is_retried_without_picking_again(
    page: Page, lesion_images: list[Path]
) -> None:
    """Offline, busy (503 + Retry-After), then the database down (503): each says so, and
    "Try again" resends the same photo."""
    failures = ["offline", "busy", "database"]

    def flaky(route: Route) -> None:
        if not failures:
            route.continue_()
            return
        kind = failures.pop(0)
        if kind == "offline":
            route.abort("internetdisconnected")
        else:
            code = "service_unavailable" if kind == "busy" else "database_unavailable"
            route.fulfill(
                status=503,
                headers={"Retry-After": "3", "Content-Type": "application/json"},
                body=json.dumps({"error": {"code": code, "message": "unavailable"}}),
            )

    sign_up(page)
    page.route("**/v1/predict", flaky)
    page.locator("#photo-file").set_input_files(str(lesion_images[3]))
    page.get_by_role("button", name="Check this photo").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Nothing is lost")
    expect(alert).to_contain_text("can't be reached")
    alert.get_by_role("button", name="Try again").click()
    expect(alert).to_contain_text("SkinScan is busy")
    expect(alert).to_contain_text("in 3 seconds")
    screenshot(page, "10-error-busy")
    alert.get_by_role("button", name="Try again").click()
    expect(alert).to_contain_text("SkinScan is unavailable")
    expect(alert).to_contain_text("can't reach its database")
    expect(alert).to_contain_text("Nothing is lost")
    alert.get_by_role("button", name="Try again").click()
    assert wait_for_result(page) in VERDICT_LABELS


def _non_skin_photo(path: Path) -> Path:
    """A photo that is not a skin lesion: scikit-image's astronaut portrait, else a document."""
    try:
        from skimage import data

        Image.fromarray(data.astronaut()).save(path, quality=90)
    except ImportError:
        img = Image.new("RGB", (800, 600), "white")
        draw = ImageDraw.Draw(img)
        for y in range(40, 560, 28):
            draw.text((40, y), "Quarterly report - revenue, costs and outlook " * 2, fill="black")
        img.save(path, quality=90)
    return path


def test_non_skin_photo_renders_its_verdict_with_explanation(page: Page, tmp_path: Path) -> None:
    """With the trained model a non-skin photo must be "unknown"; with the random test model
    the gate may say anything, so then the check is that whatever comes is explained."""
    photo = _non_skin_photo(tmp_path / "portrait.jpg")
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    upload(page, photo)
    verdict = wait_for_result(page)
    expect(page.locator(".verdict-explain")).not_to_be_empty()
    expect(page.locator(".verdict-advice")).not_to_be_empty()
    if shipped_model_path() is not None:
        assert verdict == "unknown"
    if verdict == "unknown":
        expect(page.get_by_test_id("unknown-explanation")).to_be_visible()


def _png_data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_unknown_answer_shows_what_unknown_means(page: Page, lesion_images: list[Path]) -> None:
    """Whatever the model: an "unknown" answer from the API renders its explanation."""
    grey = Image.linear_gradient("L").resize((384, 288))
    answer = {
        "verdict": "unknown",
        "p_malignant": 0.41,
        "confidence": 0.35,
        "top_class": "nv",
        "probabilities": {"nv": 0.35, "mel": 0.3, "bkl": 0.1, "bcc": 0.08, "akiec": 0.03,
                          "df": 0.1, "vasc": 0.04},
        "ood_score": 0.0123,
        "reason": "the photo is far from every skin lesion seen in training",
        "model_version": "canned-for-test",
        "stored": False,
        "heatmap_url": _png_data_url(grey),
        "overlay_url": _png_data_url(Image.merge("RGB", (grey, grey, grey))),
    }  # fmt: skip
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    page.route("**/v1/predict", lambda route: route.fulfill(json=answer))
    upload(page, lesion_images[4])
    assert wait_for_result(page) == "unknown"
    explanation = page.get_by_test_id("unknown-explanation")
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text('What "unknown" means')
    expect(page.get_by_role("meter")).to_have_count(0)
    expect(page.locator("section.verdict")).to_contain_text("not recognised as a skin lesion")
    screenshot(page, "11-result-unknown", full_page=True)
    # The model's own reason is in Details; the card speaks plainly.
    expect(explanation).not_to_contain_text("far from every skin lesion seen in training")
    page.get_by_text("Details", exact=True).click()
    expect(page.locator("dl.facts")).to_contain_text("far from every skin lesion seen in training")


def test_gateway_403_is_refreshed_like_a_401(page: Page, lesion_images: list[Path]) -> None:
    """In AWS the gateway's authorizer answers an expired token with 403, not 401: the app
    refreshes and retries on it too, instead of showing the person an error."""
    sign_up(page)
    upload(page, lesion_images[6])
    wait_for_result(page)
    refused: list[str] = []

    def gateway(route: Route) -> None:
        if not refused:  # the first listing: as if this token had just expired
            refused.append(route.request.headers.get("authorization", ""))
            route.fulfill(status=403, json={"message": "Forbidden"})
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/predictions(\?.*)?$"), gateway)
    retried: list[str] = []
    page.on(
        "request",
        lambda r: (
            retried.append(r.headers.get("authorization", ""))
            if re.search(r"/v1/predictions(\?|$)", r.url)
            else None
        ),
    )
    with page.expect_response("**/v1/auth/refresh") as refresh:
        page.get_by_role("link", name="History").click()
    assert refresh.value.status == 200
    expect(page.locator(".history-item")).to_have_count(1)
    assert refused and refused[0].startswith("Bearer ")
    assert len(retried) == 2 and retried[1] != retried[0]  # once more, with the new token
    assert not page.errors, page.errors


def _listed(verdict: str, count: int) -> dict:
    """A history page of ``count`` made-up results with ``verdict``."""
    items = [
        {
            "id": str(uuid.uuid4()),
            "status": "done",
            "verdict": verdict,
            "p_malignant": 0.5,
            "created_at": "2026-12-07T10:00:00Z",
        }
        for _ in range(count)
    ]
    return {"items": items, "next_cursor": None}


def test_a_slow_answer_for_an_old_filter_is_dropped(page: Page) -> None:
    """Change the filter twice quickly: only the last choice's results are listed, even when
    the first choice's answer arrives last."""
    sign_up(page)
    held: list[Route] = []

    def listing(route: Route) -> None:
        if "verdict=malignant" in route.request.url:
            held.append(route)  # answered later, after the newer filter's answer
        elif "verdict=unknown" in route.request.url:
            route.fulfill(json=_listed("unknown", 1))
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/predictions\?.*"), listing)
    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("No results yet.")).to_be_visible()
    page.select_option("#history-filter", "malignant")
    while not held:
        page.wait_for_timeout(50)
    page.select_option("#history-filter", "unknown")
    expect(page.locator(".history-item")).to_have_count(1)
    held[0].fulfill(json=_listed("malignant", 3))
    page.wait_for_timeout(500)  # the stale answer has arrived: it must change nothing
    expect(page.locator(".history-item")).to_have_count(1)
    assert page.locator(".history-item").get_attribute("data-verdict") == "unknown"
    assert not page.errors, page.errors


def test_the_history_filter_survives_back_and_reload(page: Page) -> None:
    """Open a result from a filtered history and come back: the same filter, the same list."""
    sign_up(page)
    asked: list[str] = []

    def listing(route: Route) -> None:
        verdict = re.search(r"verdict=(\w+)", route.request.url)
        asked.append(verdict.group(1) if verdict else "")
        route.fulfill(json=_listed(verdict.group(1) if verdict else "benign", 2))

    page.route(re.compile(r".*/v1/predictions\?.*"), listing)
    page.get_by_role("link", name="History").click()
    page.select_option("#history-filter", "malignant")
    expect(page).to_have_url(re.compile(r"#/history/malignant$"))
    expect(page.locator(".history-item[data-verdict=malignant]")).to_have_count(2)

    page.locator("a.history-link").first.click()
    expect(page).to_have_url(re.compile(r"#/result/"))
    page.go_back()
    expect(_heading(page)).to_have_text("Your results")
    expect(page.locator("#history-filter")).to_have_value("malignant")
    expect(page.locator(".history-item[data-verdict=malignant]")).to_have_count(2)
    page.reload()
    expect(page.locator("#history-filter")).to_have_value("malignant")
    expect(page.locator(".history-item[data-verdict=malignant]")).to_have_count(2)
    assert asked == ["", "malignant", "malignant", "malignant"]

    page.select_option("#history-filter", "")
    expect(page).to_have_url(re.compile(r"#/history$"))
    page.goto("/#/history/not-a-verdict")  # a made-up filter in the address lists everything
    expect(page.locator("#history-filter")).to_have_value("")
    assert not page.errors, page.errors


def test_signed_in_people_skip_sign_in_and_are_told_when_the_session_ends(page: Page) -> None:
    sign_up(page)
    # Back to the sign-in screen (e.g. with Back): a signed-in person goes home instead, so
    # "Continue as guest" there cannot leave a live session behind.
    page.goto("/#/signin")
    expect(_heading(page)).to_have_text("Check a skin spot")
    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("No results yet.")).to_be_visible()
    # The session ends while the list is open (the refresh token was revoked elsewhere): the
    # next filter change says so on the sign-in screen.
    page.route("**/v1/auth/refresh", lambda route: route.fulfill(status=401, json={}))
    time.sleep(ACCESS_TOKEN_TTL_S + TOKEN_LEEWAY_S + 1.5)
    page.select_option("#history-filter", "benign")
    expect(_heading(page)).to_have_text("Welcome to SkinScan")
    expect(page.get_by_role("status").filter(has_text="session has ended")).to_be_visible()
    assert not page.errors, page.errors


def test_expired_access_token_is_refreshed(page: Page, lesion_images: list[Path]) -> None:
    """The server's access tokens live ~1 s (+5 s leeway): after that, a call gets 401, the app
    rotates the refresh token and retries once, and the person notices nothing."""
    sign_up(page)
    upload(page, lesion_images[5])
    wait_for_result(page)
    # Only the refresh token is stored; the access token lives in memory.
    stored = page.evaluate("() => ({...sessionStorage, ...localStorage})")
    assert set(stored) == {"skinscan.refresh_token"}
    time.sleep(ACCESS_TOKEN_TTL_S + TOKEN_LEEWAY_S + 1.5)

    statuses: list[tuple[str, int]] = []

    def record(response: Response) -> None:
        if "/v1/" in response.url:
            statuses.append((response.url.split("?")[0].split("/v1/", 1)[1], response.status))

    page.on("response", record)
    page.get_by_role("link", name="History").click()
    expect(page.locator(".history-item")).to_have_count(1)
    assert ("predictions", 401) in statuses
    assert ("auth/refresh", 200) in statuses
    assert ("predictions", 200) in statuses
    assert statuses.index(("auth/refresh", 200)) < statuses.index(("predictions", 200))

    # A reload drops the in-memory token: the stored refresh token signs the person back in.
    page.reload()
    expect(page.get_by_role("link", name="Account")).to_be_visible()
    page.get_by_role("link", name="Account").click()
    expect(_heading(page)).to_have_text("Account")
    assert not page.errors, page.errors


def _big_portrait_photo(path: Path, lesion: Path) -> Path:
    """A phone-sized photo (about 4000x3000 stored landscape, EXIF "turn 90°"), over 3 MB."""
    base = Image.open(lesion).convert("RGB").resize((4000, 3000))
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    photo = Image.blend(base, noise, 0.25)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was held upright: turn 90° clockwise to show
    photo.save(path, "JPEG", quality=95, exif=exif.tobytes())
    assert path.stat().st_size > 3 * 1024 * 1024
    return path


def test_a_large_photo_is_made_smaller_and_upright_before_it_is_sent(
    page: Page, lesion_images: list[Path], tmp_path: Path
) -> None:
    """In AWS a request carries at most about 4.4 MB of photo: the app sends big photos as an
    upright JPEG at most 2048 pixels across, and the check works."""
    big = _big_portrait_photo(tmp_path / "phone.jpg", lesion_images[3])
    sent: list[bytes] = []

    def keep(route: Route) -> None:
        sent.append(route.request.post_data_buffer or b"")
        route.continue_()

    page.route("**/v1/predict", keep)
    sign_up(page)
    upload(page, big)
    wait_for_result(page)
    assert len(sent) == 1
    body = sent[0]
    # Chromium leaves a file read from disk out of the recorded body: a JPEG here was made by
    # the page. (Before, the 3.5 MB original went as it was.)
    assert b"\xff\xd8" in body, "the photo was sent as picked, not made smaller"
    assert len(body) < 4 * 1024 * 1024 < big.stat().st_size
    jpeg = body[body.index(b"\xff\xd8") : body.rindex(b"\xff\xd9") + 2]
    with Image.open(io.BytesIO(jpeg)) as got:
        assert max(got.size) == 2048
        assert got.height > got.width  # already turned: portrait, as the person saw it
        assert got.getexif().get(0x0112) in (None, 1)
    assert not page.errors, page.errors


def test_leaving_the_scan_screen_does_not_cancel_a_check(
    page: Page, lesion_images: list[Path]
) -> None:
    """The server stores a result even when the person leaves the Scan screen while it works:
    the app keeps waiting for it, says when it is ready, and never sends the photo twice."""
    sign_up(page)
    held: list[Route] = []
    page.route("**/v1/predict", lambda route: held.append(route))
    sent: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/v1/predict") else None)
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))

    upload(page, lesion_images[0])
    expect(page.get_by_text("Checking your photo")).to_be_visible()
    while not held:
        page.wait_for_timeout(50)
    page.get_by_role("link", name="History").click()
    expect(_heading(page)).to_have_text("Your results")
    # Back on Scan while it is still working: it says so, and the photo cannot go twice.
    page.get_by_role("link", name="Scan", exact=True).click()
    expect(page.get_by_text("Checking your photo")).to_be_visible()
    expect(page.get_by_role("button", name="Check this photo")).to_be_disabled()
    page.get_by_role("link", name="Account").click()
    expect(_heading(page)).to_have_text("Account")

    held[0].continue_()
    banner = page.locator("#check-banner")
    expect(banner).to_contain_text("Your result is ready", timeout=60_000)  # the model's time
    expect(_heading(page)).to_have_text("Account")  # no jump away from what they are doing
    expect(page.get_by_role("status").filter(has_text="Your result is ready")).to_have_count(1)
    # Coming back to Scan: the photo is no longer waiting there, the banner still is.
    page.get_by_role("link", name="Scan", exact=True).click()
    expect(page.get_by_text("No photo chosen yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Check this photo")).to_be_disabled()
    banner.get_by_role("link", name="View it").click()
    verdict = wait_for_result(page)
    expect(page.locator("section.verdict")).to_contain_text(VERDICT_LABELS[verdict])
    expect(banner).to_be_hidden()

    page.get_by_role("link", name="History").click()
    expect(page.locator(".history-item")).to_have_count(1)
    assert len(sent) == 1 and not failed, (sent, failed)
    assert not page.errors, page.errors


def test_a_check_finishing_while_history_is_shown_appears_in_the_list(
    page: Page, lesion_images: list[Path]
) -> None:
    sign_up(page)
    upload(page, lesion_images[0])
    wait_for_result(page)
    held: list[Route] = []
    page.route("**/v1/predict", lambda route: held.append(route))
    page.get_by_role("link", name="Scan", exact=True).click()
    upload(page, lesion_images[1])
    while not held:
        page.wait_for_timeout(50)
    page.get_by_role("link", name="History").click()
    expect(page.locator(".history-item")).to_have_count(1)
    first_id = page.locator(".history-item").first.get_attribute("data-id")

    held[0].continue_()
    expect(page.locator("#check-banner")).to_contain_text("Your result is ready", timeout=60_000)
    # At the top, as a reload would put it, listed once, and with its thumbnail.
    expect(page.locator(".history-item")).to_have_count(2)
    newest = page.locator(".history-item").first
    expect(newest).not_to_have_attribute("data-id", first_id or "")
    expect(newest.locator("img.thumb")).to_have_attribute("src", re.compile(".+"))
    newest_id = newest.get_attribute("data-id") or "?"
    page.reload()
    expect(page.locator(".history-item")).to_have_count(2)
    expect(page.locator(".history-item").first).to_have_attribute("data-id", newest_id)
    assert not page.errors, page.errors


def test_an_offline_error_retries_when_the_connection_is_back(page: Page) -> None:
    """A list that failed offline loads by itself once the device is online again, instead of
    still saying "You are offline"."""
    sign_up(page)
    page.context.set_offline(True)
    page.get_by_role("link", name="History").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You are offline")
    page.context.set_offline(False)
    expect(page.get_by_text("No results yet.")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)

    # An upload is not resent on its own, but the card stops saying the device is offline.
    page.get_by_role("link", name="Scan", exact=True).click()
    page.context.set_offline(True)
    page.locator("#photo-file").set_input_files(
        str(sorted((Path(__file__).parents[1] / "fixtures" / "ham").glob("*.jpg"))[0])
    )
    page.get_by_role("button", name="Check this photo").click()
    expect(alert).to_contain_text("You are offline")
    page.context.set_offline(False)
    expect(alert).not_to_contain_text("You are offline")
    expect(alert).to_contain_text("back online")
    expect(alert.get_by_role("button", name="Try again")).to_be_visible()
    assert not page.errors, page.errors


def test_a_guest_check_finishing_elsewhere_is_shown_from_the_banner(
    page: Page, lesion_images: list[Path]
) -> None:
    """A guest's result is kept only in the tab: one that finishes while the previous result
    is on screen (the same #/result address) is shown when the person asks for it."""
    page.goto("/")
    page.get_by_role("button", name="Continue as guest").click()
    answers = [canned_prediction("benign", 0.12), canned_prediction("malignant", 0.83)]
    held: list[Route] = []

    def predict(route: Route) -> None:
        if len(answers) == 2:
            route.fulfill(json=answers.pop(0))
        else:
            held.append(route)

    page.route("**/v1/predict", predict)
    upload(page, lesion_images[0])
    assert wait_for_result(page) == "benign"
    page.get_by_role("link", name="Check another photo").click()
    upload(page, lesion_images[1])
    while not held:
        page.wait_for_timeout(50)
    page.go_back()  # back to the first result while the second check works
    expect(page.locator("section.verdict")).to_have_attribute("data-verdict", "benign")
    held[0].fulfill(json=answers.pop(0))
    banner = page.locator("#check-banner")
    banner.get_by_role("link", name="View it").click()
    expect(page.locator("section.verdict")).to_have_attribute("data-verdict", "malignant")
    expect(banner).to_be_hidden()
    assert not page.errors, page.errors


def test_a_check_that_hangs_can_be_cancelled(page: Page, lesion_images: list[Path]) -> None:
    """A request that never gets an answer must not lock the Scan screen: Cancel frees it."""
    sign_up(page)
    held: list[Route] = []
    page.route("**/v1/predict", lambda route: held.append(route))
    upload(page, lesion_images[0])
    expect(page.get_by_text("Checking your photo")).to_be_visible()
    while not held:
        page.wait_for_timeout(50)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Check cancelled.")).to_be_visible()
    expect(page.get_by_role("button", name="Check this photo")).to_be_enabled()
    page.unroute("**/v1/predict")
    page.get_by_role("button", name="Check this photo").click()
    wait_for_result(page)
    assert not page.errors, page.errors


def test_signing_out_during_a_check_frees_the_scan_screen_for_the_next_person(
    page: Page, lesion_images: list[Path]
) -> None:
    sign_up(page)
    held: list[Route] = []
    page.route("**/v1/predict", lambda route: held.append(route))
    upload(page, lesion_images[0])
    while not held:
        page.wait_for_timeout(50)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("button", name="Continue as guest").click()
    expect(_heading(page)).to_have_text("Check a skin spot")
    expect(page.get_by_text("Checking your photo")).to_have_count(0)
    page.locator("#photo-file").set_input_files(str(lesion_images[1]))
    expect(page.get_by_role("button", name="Check this photo")).to_be_enabled()
    expect(page.locator("#view")).not_to_have_attribute("aria-busy", "true")
    page.unroute("**/v1/predict")
    page.get_by_role("button", name="Check this photo").click()
    wait_for_result(page)
    expect(page.locator("#check-banner")).to_be_hidden()  # nothing of the first person's check
    assert not page.errors, page.errors


def test_a_screen_still_loading_when_another_is_opened_does_not_linger(
    page: Page, lesion_images: list[Path]
) -> None:
    """History waits for its list; opening Scan meanwhile must leave Scan in charge: when the
    person then goes to Account, Scan's hold on a check in flight ends with it (the check's
    answer then shows as a banner, not by taking the person away from Account)."""
    sign_up(page)
    held_predict: list[Route] = []
    page.route("**/v1/predict", lambda route: held_predict.append(route))
    upload(page, lesion_images[0])
    while not held_predict:
        page.wait_for_timeout(50)
    held_list: list[Route] = []
    page.route(re.compile(r".*/v1/predictions\?.*"), lambda route: held_list.append(route))
    page.get_by_role("link", name="History").click()
    while not held_list:
        page.wait_for_timeout(50)
    page.get_by_role("link", name="Scan", exact=True).click()  # History is still loading
    expect(page.get_by_text("Checking your photo")).to_be_visible()
    held_list[0].fulfill(json={"items": [], "next_cursor": None})  # History finishes late
    page.get_by_role("link", name="Account").click()
    expect(_heading(page)).to_have_text("Account")
    held_predict[0].continue_()
    expect(page.locator("#check-banner")).to_contain_text("Your result is ready", timeout=60_000)
    expect(_heading(page)).to_have_text("Account")
    assert not page.errors, page.errors
