"""The PDF report: it parses, says the verdict, shows the images and the disclaimer."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from PIL import Image, ImageStat

pypdf = pytest.importorskip("pypdf")
report_pdf = pytest.importorskip("skinscan_common.services.report_pdf")

from skinscan_common.errors import AppError  # noqa: E402
from skinscan_common.storage import ObjectNotFoundError  # noqa: E402


def _image_bytes(fmt: str, size: tuple[int, int] = (200, 150), color=(180, 120, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def _prediction(**overrides: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "status": "done",
        "verdict": "malignant",
        "p_malignant": 0.734,
        "confidence": 0.734,
        "top_class": "mel",
        "probabilities": {
            "mel": 0.58,
            "nv": 0.2,
            "bcc": 0.1,
            "akiec": 0.024,
            "bkl": 0.05,
            "df": 0.01,
            "vasc": 0.006,
        },
        "reason": None,
        "model_version": "resnet50-ham10000-test",
        "created_at": datetime(2026, 11, 30, 9, 15, tzinfo=UTC),
        "image_key": "users/u/predictions/p/image.jpg",
        "overlay_key": "users/u/predictions/p/overlay.png",
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_report_parses_and_has_everything() -> None:
    pdf = report_pdf.render_report(
        _prediction(), _image_bytes("JPEG"), _image_bytes("PNG", (384, 288), (200, 30, 30))
    )
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    assert len(reader.pages[0].images) == 2  # photo and overlay
    text = _text(pdf)
    for expected in (
        "SkinScan report",
        "Possibly malignant",
        "Estimated probability of malignancy: 73%",
        "Melanoma",
        "Probability of that diagnosis",
        "58%",
        "resnet50-ham10000-test",
        "2026-11-30 09:15 UTC",
        "not a diagnosis",
        "12345678-1234-5678-1234-567812345678",
    ):
        assert expected in text, expected
    # The heatmap's limit is said under it (the line may wrap anywhere).
    assert "not an outline of the spot" in " ".join(text.split())
    assert reader.metadata.title == "SkinScan report"


def test_unknown_report_explains_and_gives_no_probability() -> None:
    pdf = report_pdf.render_report(
        _prediction(verdict="unknown", reason="far from every lesion seen in training"),
        _image_bytes("PNG"),
        None,
    )
    text = _text(pdf)
    assert "Unknown - not recognised as a skin lesion" in text
    assert "far from every lesion seen in training" in text
    assert "probability of malignancy" not in text
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images) == 1


def test_unreadable_images_and_odd_text_do_not_break_the_report() -> None:
    pdf = report_pdf.render_report(
        _prediction(verdict="benign", model_version="v1 \u2014 \u00fcber \U0001f600"),
        b"this is not an image",
        b"",
    )
    text = _text(pdf)
    assert "Likely benign" in text
    assert "v1 ? \u00fcber ?" in text
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images) == 0


class _DictStore:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFoundError(key) from None


def test_report_for_reads_the_stored_images_and_tolerates_missing_ones() -> None:
    row = _prediction()
    store = _DictStore({row.image_key: _image_bytes("JPEG")})  # overlay missing
    pdf = report_pdf.report_for(row, store)
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images) == 1


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_report_for_unfinished_prediction_is_409(status: str) -> None:
    with pytest.raises(AppError) as info:
        report_pdf.report_for(_prediction(status=status), _DictStore({}))
    assert info.value.status_code == 409
    assert info.value.code == "not_ready"


MM = 72 / 25.4  # PDF points per millimetre


def _placements(pdf: bytes) -> list[list[tuple[float, float, float, float]]]:
    """Per page, each drawn image's (left, bottom, width, height) in mm, from the page's
    content stream (fpdf2 draws an image as ``q W 0 0 H X Y cm /In Do Q``)."""
    import re

    pattern = re.compile(rb"([\d.]+) 0 0 ([\d.]+) ([\d.]+) ([\d.]+) cm /I\w* Do")
    pages = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        data = page.get_contents().get_data()
        pages.append(
            [
                (float(x) / MM, float(y) / MM, float(w) / MM, float(h) / MM)
                for w, h, x, y in pattern.findall(data)
            ]
        )
    return pages


def _text_positions(pdf: bytes, wanted: tuple[str, ...]) -> dict[str, tuple[int, float]]:
    """(page index, y in mm from the bottom) of the first text piece that is one of ``wanted``."""
    found: dict[str, tuple[int, float]] = {}
    for index, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages):

        def visit(text: str, cm: list, tm: list, *_: object, index: int = index) -> None:
            for word in wanted:
                if text.strip() == word and word not in found:
                    found[word] = (index, (tm[5] * cm[3] + cm[5]) / MM)

        page.extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize("size", [(3000, 4000), (1080, 2400), (1000, 3000), (4000, 1000)])
@pytest.mark.parametrize("verdict", ["malignant", "unknown"])
def test_any_photo_shape_sits_beside_its_overlay_on_page_one(
    size: tuple[int, int], verdict: str
) -> None:
    reason = "not recognised as a skin-lesion photo; " * 4 if verdict == "unknown" else None
    overlay = _image_bytes("PNG", (384, 289), (200, 30, 30))
    pdf = report_pdf.render_report(
        _prediction(verdict=verdict, reason=reason), _image_bytes("JPEG", size), overlay
    )
    pages = _placements(pdf)
    assert len(pages[0]) == 2 and all(not p for p in pages[1:])
    (px, py, pw, ph), (ox, oy, ow, oh) = pages[0]
    # The aspect ratio is kept (within the shrunk JPEG's rounding) and both fit the page.
    assert pw / ph == pytest.approx(size[0] / size[1], rel=0.02)
    assert ow / oh == pytest.approx(384 / 289, rel=0.02)
    for x, y, w, _h in pages[0]:
        assert x >= 15 - 0.01 and x + w <= 210 - 15 + 0.01
        assert y >= 15  # above the bottom margin (and the footer in it)
    # Side by side: one row (vertical ranges overlap), photo left of the overlay.
    assert px + pw <= ox and max(py, oy) < min(py + ph, oy + oh)
    # The captions are under their own images, on page 1.
    text = _text_positions(pdf, ("Photo", "Heatmap overlay"))
    assert text["Photo"][0] == text["Heatmap overlay"][0] == 0
    assert text["Photo"][1] < min(py, oy) and text["Heatmap overlay"][1] < min(py, oy)


def _embedded_mean(pdf: bytes) -> list[float]:
    """Mean grey level of each embedded image of page 1."""
    images = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images
    return [ImageStat.Stat(img.image.convert("L")).mean[0] for img in images]


def test_a_16_bit_photo_is_scaled_not_clipped_to_white() -> None:
    # A mid-grey 16-bit photo (values up to 65535): a plain convert("RGB") clips it to white.
    buf = io.BytesIO()
    gradient = Image.linear_gradient("L").resize((64, 48)).convert("I")
    gradient.point(lambda v: v * 257).convert("I;16").save(buf, format="PNG")
    pdf = report_pdf.render_report(_prediction(), buf.getvalue(), None)
    (mean,) = _embedded_mean(pdf)
    assert 100 < mean < 155  # a gradient over the full range: about 127


def test_a_transparent_photo_is_shown_on_white() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (80, 60), (255, 0, 0, 0)).save(buf, format="PNG")  # fully transparent
    pdf = report_pdf.render_report(_prediction(), buf.getvalue(), None)
    (mean,) = _embedded_mean(pdf)
    assert mean > 245


def test_the_grad_cam_text_comes_only_with_an_overlay() -> None:
    photo_only = _text(report_pdf.render_report(_prediction(), _image_bytes("JPEG"), None))
    assert "Photo" in photo_only and "Grad-CAM" not in photo_only
    both = report_pdf.render_report(_prediction(), _image_bytes("JPEG"), _image_bytes("PNG"))
    assert "Grad-CAM" in _text(both)
