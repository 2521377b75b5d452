"""The PDF report: it parses, says the verdict, shows the images and the disclaimer."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from PIL import Image

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
