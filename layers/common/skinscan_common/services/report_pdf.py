"""A one-page PDF report of a prediction: photo, heatmap overlay, verdict, probability, model
version, date and the not-a-diagnosis disclaimer. Pure Python (fpdf2 + Pillow)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fpdf import FPDF
from PIL import Image, ImageOps, UnidentifiedImageError

from skinscan_common.errors import AppError
from skinscan_common.observability import logger
from skinscan_common.storage import ObjectNotFoundError, ObjectStore

VERDICT_TEXT = {
    "benign": "Likely benign",
    "malignant": "Possibly malignant",
    "unknown": "Unknown - not recognised as a skin lesion",
}
VERDICT_ADVICE = {
    "benign": (
        "The model finds this spot most similar to benign (non-cancerous) lesions. Keep an eye "
        "on it and see a doctor if it changes in size, shape or colour, itches or bleeds."
    ),
    "malignant": (
        "The model finds features it associates with skin cancer. Please show this spot to a "
        "doctor or dermatologist soon: only an examination can tell."
    ),
    "unknown": (
        "The photo does not resemble the skin-lesion close-ups the model was trained on, so it "
        "gives no benign or malignant answer rather than guess. This says nothing about whether "
        "a spot is harmless."
    ),
}
VERDICT_RGB = {"benign": (22, 101, 52), "malignant": (153, 27, 27), "unknown": (55, 48, 163)}
CLASS_NAMES = {
    "nv": "Melanocytic nevus (mole)",
    "bkl": "Benign keratosis",
    "df": "Dermatofibroma",
    "vasc": "Vascular lesion",
    "mel": "Melanoma",
    "bcc": "Basal cell carcinoma",
    "akiec": "Actinic keratosis / intraepithelial carcinoma",
}
DISCLAIMER = (
    "This report is not a diagnosis. SkinScan is a research and education tool: its answer comes "
    "from a computer model and can be wrong in both directions. It does not replace a doctor. If "
    "a spot is new, changing, itching, bleeding or worries you, see a doctor or dermatologist "
    "whatever this report says. The model was trained on the HAM10000 dermoscopy images "
    "(Tschandl et al., 2018; CC BY-NC 4.0) and is for non-commercial use."
)
NEXT_LINE: dict[str, Any] = {"new_x": "LMARGIN", "new_y": "NEXT"}
#: Longest side of embedded images, in pixels (keeps the PDF small whatever was uploaded).
MAX_IMAGE_SIDE = 900
#: Height (mm) of the box each image is fitted into, aspect kept: a 4:3 photo fills its half
#: of the page width, and a portrait one stays on page 1 beside its overlay.
IMAGE_BOX_HEIGHT = 66.0
IMAGE_GAP = 6.0
GRADCAM_TEXT = (
    "Grad-CAM heatmap: red and yellow areas influenced the answer most, blue areas least. "
    "The overlay shows the photo framed (cropped) the way the model saw it. The map is "
    "coarse and partly the same for every photo; its brightest part is usually on the spot, "
    "but it spreads over the skin around it too: a rough hint of what the model used, not an "
    "outline of the spot."
)


class ReportSource(Protocol):
    """What the report reads from a prediction (an ORM row or a schema both fit)."""

    id: Any
    status: str
    verdict: str | None
    p_malignant: float | None
    confidence: float | None
    top_class: str | None
    probabilities: Mapping[str, float] | None
    reason: str | None
    model_version: str | None
    created_at: datetime


def _latin1(text: object) -> str:
    """The PDF core fonts speak Latin-1: replace anything else rather than fail."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class _Picture:
    """An image ready to embed: JPEG bytes and its size in pixels."""

    jpeg: io.BytesIO
    width: int
    height: int


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode: 16/32-bit grey scaled down from its full range (a plain
    ``convert`` clips it to near white), transparency composited on white (not on black).

    The engine's ``preprocessing.to_rgb`` does the same with numpy; the layer has Pillow only.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.convert("I")
        hi = img.getextrema()[1]
        scale = 255.0 / hi if hi > 255 else 1.0
        img = img.point(lambda v: v * scale).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _picture(data: bytes | None) -> _Picture | None:
    """Decode, make upright RGB, shrink and re-encode an image; None if it can't be read."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = _to_rgb(ImageOps.exif_transpose(img))
            img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=85)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        logger.warning("report: an image could not be decoded; left out")
        return None
    out.seek(0)
    return _Picture(out, img.width, img.height)


def _fit(picture: _Picture, box_w: float, box_h: float) -> tuple[float, float]:
    """The size (mm) of ``picture`` scaled to fit a ``box_w`` x ``box_h`` box, aspect kept."""
    scale = min(box_w / picture.width, box_h / picture.height)
    return picture.width * scale, picture.height * scale


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Report(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(100, 100, 100)
        self.cell(0, 6, f"SkinScan report - page {self.page_no()}/{{nb}}", align="C")


def _images(pdf: FPDF, photo: _Picture | None, overlay: _Picture | None) -> None:
    """Photo and overlay side by side, each fitted in its half-width box, captions under them;
    the Grad-CAM explanation only when there is an overlay to explain."""
    shown = [(label, p) for label, p in (("Photo", photo), ("Heatmap overlay", overlay)) if p]
    if not shown:
        return
    box_w = (pdf.epw - IMAGE_GAP) / 2
    sizes = [_fit(picture, box_w, IMAGE_BOX_HEIGHT) for _, picture in shown]
    row_h = max(h for _, h in sizes)
    caption_h = 6
    if pdf.will_page_break(row_h + caption_h):
        pdf.add_page()
    top = pdf.get_y()
    pdf.set_font("Helvetica", size=9)
    pdf.set_text_color(80, 80, 80)
    for i, ((label, picture), (w, h)) in enumerate(zip(shown, sizes, strict=True)):
        left = pdf.l_margin + i * (box_w + IMAGE_GAP)
        # Centred in its box: images of different shapes still line up as one row.
        pdf.image(picture.jpeg, x=left + (box_w - w) / 2, y=top + (row_h - h) / 2, w=w, h=h)
        pdf.set_xy(left, top + row_h + 1)
        pdf.cell(box_w, 5, label, align="C")
    pdf.set_xy(pdf.l_margin, top + row_h + caption_h + 2)
    if overlay is not None:
        pdf.set_font("Helvetica", size=8)
        pdf.multi_cell(0, 4, GRADCAM_TEXT, **NEXT_LINE)
    pdf.ln(2)


def _gauge(pdf: FPDF, p: float) -> None:
    """A bar from green to red with a marker at ``p``."""
    x, y, w, h = pdf.l_margin, pdf.get_y(), pdf.epw, 5
    steps = 60
    for i in range(steps):
        t = i / (steps - 1)
        # green -> amber -> red
        if t < 0.5:
            r, g, b = 22 + (234 - 22) * t * 2, 163 + (179 - 163) * t * 2, 74 - 66 * t * 2
        else:
            r, g, b = 234 - 14 * (t - 0.5) * 2, 179 - 141 * (t - 0.5) * 2, 8 + 30 * (t - 0.5) * 2
        pdf.set_fill_color(round(r), round(g), round(b))
        pdf.rect(x + w * i / steps, y, w / steps + 0.2, h, style="F")
    pdf.set_fill_color(20, 20, 20)
    pdf.rect(x + w * min(max(p, 0.0), 1.0) - 0.8, y - 1.5, 1.6, h + 3, style="F")
    pdf.set_y(y + h + 2)
    pdf.set_font("Helvetica", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(w / 2, 4, "0%")
    pdf.cell(w / 2, 4, "100%", align="R", **NEXT_LINE)
    pdf.ln(2)


def render_report(
    prediction: ReportSource,
    photo: bytes | None = None,
    overlay: bytes | None = None,
    *,
    generated_at: datetime | None = None,
) -> bytes:
    """The PDF bytes for one finished prediction (images are optional)."""
    verdict = prediction.verdict or "unknown"
    pdf = _Report(format="A4", unit="mm")
    pdf.set_title("SkinScan report")
    pdf.set_author("SkinScan")
    pdf.set_creation_date(generated_at or datetime.now(UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()

    pdf.set_font("Helvetica", style="B", size=20)
    pdf.set_text_color(14, 116, 144)
    pdf.cell(0, 10, "SkinScan report", **NEXT_LINE)
    pdf.set_font("Helvetica", size=9)
    pdf.set_text_color(80, 80, 80)
    pdf.cell(0, 5, _latin1(f"Photo checked: {_when(prediction.created_at)}"), **NEXT_LINE)
    pdf.cell(0, 5, _latin1(f"Result id: {prediction.id}"), **NEXT_LINE)
    pdf.ln(3)

    pdf.set_font("Helvetica", style="B", size=16)
    pdf.set_text_color(*VERDICT_RGB.get(verdict, (0, 0, 0)))
    pdf.cell(0, 9, _latin1(f"Result: {VERDICT_TEXT.get(verdict, verdict)}"), **NEXT_LINE)
    pdf.set_text_color(20, 20, 20)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, _latin1(VERDICT_ADVICE.get(verdict, "")), **NEXT_LINE)
    if prediction.reason:
        pdf.set_font("Helvetica", style="I", size=9)
        pdf.multi_cell(0, 5, _latin1(f"Why: {prediction.reason}"), **NEXT_LINE)
    pdf.ln(2)

    if verdict != "unknown" and prediction.p_malignant is not None:
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.cell(
            0,
            6,
            f"Estimated probability of malignancy: {prediction.p_malignant * 100:.0f}%",
            **NEXT_LINE,
        )
        _gauge(pdf, prediction.p_malignant)

    _images(pdf, _picture(photo), _picture(overlay))

    pdf.set_text_color(20, 20, 20)
    pdf.set_font("Helvetica", size=10)
    # The top class's own probability (``confidence`` is that of the benign/malignant call).
    top_p = (prediction.probabilities or {}).get(prediction.top_class or "")
    facts = [
        ("Most similar to", CLASS_NAMES.get(prediction.top_class or "", prediction.top_class)),
        ("Probability of that diagnosis", f"{top_p * 100:.0f}%" if top_p is not None else None),
        ("Model version", prediction.model_version),
        ("Report generated", _when(generated_at or datetime.now(UTC))),
    ]
    for label, value in facts:
        if value:
            pdf.set_font("Helvetica", style="B", size=10)
            pdf.cell(55, 6, label)
            pdf.set_font("Helvetica", size=10)
            pdf.cell(0, 6, _latin1(value), **NEXT_LINE)

    probs = sorted((prediction.probabilities or {}).items(), key=lambda kv: -kv[1])
    if probs:
        pdf.ln(2)
        pdf.set_font("Helvetica", size=9)
        pdf.set_draw_color(200, 200, 200)
        pdf.set_fill_color(255, 255, 255)
        with pdf.table(
            col_widths=(3, 1),
            text_align=("LEFT", "RIGHT"),
            line_height=5,
            cell_fill_color=(243, 244, 246),
            cell_fill_mode="ROWS",
        ) as table:
            table.row(["Diagnosis", "Probability"])
            for cls, p in probs:
                table.row([_latin1(CLASS_NAMES.get(cls, cls)), f"{p * 100:.1f}%"])
    pdf.ln(4)

    pdf.set_fill_color(255, 251, 235)
    pdf.set_draw_color(252, 211, 77)
    pdf.set_font("Helvetica", style="B", size=10)
    pdf.multi_cell(0, 6, "This is not a diagnosis", border="LTR", fill=True, **NEXT_LINE)
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, DISCLAIMER, border="LBR", fill=True, **NEXT_LINE)
    return bytes(pdf.output())


def _read(store: ObjectStore, key: str | None) -> bytes | None:
    if not key:
        return None
    try:
        return store.get(key)
    except ObjectNotFoundError:
        logger.warning("report: stored object missing", extra={"key_kind": key.rsplit("/", 1)[-1]})
        return None


def report_for(prediction: Any, store: ObjectStore) -> bytes:
    """The report of a stored prediction row (its photo and overlay read from ``store``).

    A prediction that is not ``done`` has nothing to report: 409 ``not_ready``.
    """
    if prediction.status != "done":
        raise AppError(
            "this result is not ready: there is nothing to report yet",
            code="not_ready",
            status_code=409,
        )
    return render_report(
        prediction, _read(store, prediction.image_key), _read(store, prediction.overlay_key)
    )
