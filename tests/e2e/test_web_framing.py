"""The result screen frames the photo exactly as the model saw it, portrait photos included.

The heatmap is drawn over ``framePhoto``'s canvas (web/js/heatmap.js), so that canvas must match
the engine's framing (``fit_to_geometry``: a portrait photo turned a quarter counter-clockwise,
then centre-cropped); any shift puts the map on the wrong part of the photo.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api")
from PIL import Image
from playwright.sync_api import Page

from skinscan_engine.preprocessing import Geometry, decode_image, fit_to_geometry
from tests.image_samples import encode

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 160, 120  # the canvas size asked for (4:3, as the model's input)
FRAME = """async ({src, width, height}) => {
  const { framePhoto } = await import('/js/heatmap.js');
  const img = new Image();
  img.src = src;
  await img.decode();
  const canvas = framePhoto(img, width, height, width);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return { width: canvas.width, height: canvas.height, rgba: Array.from(data) };
}"""


def _blocks(width: int, height: int) -> Image.Image:
    """Six flat colour blocks (3 x 2 on a landscape photo): any turn or shift shows."""
    colours = [
        (220, 40, 40),
        (40, 180, 40),
        (40, 60, 220),
        (230, 200, 40),
        (200, 40, 200),
        (30, 200, 200),
    ]
    img = Image.new("RGB", (width, height))
    cols, rows = (3, 2) if width >= height else (2, 3)
    for i, colour in enumerate(colours):
        c, r = i % cols, i // cols
        box = (
            c * width // cols,
            r * height // rows,
            (c + 1) * width // cols,
            (r + 1) * height // rows,
        )
        img.paste(colour, box)
    return img


def _jpeg(img: Image.Image, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    "photo",
    [
        _jpeg(_blocks(480, 360)),  # landscape
        _jpeg(_blocks(360, 480)),  # portrait in its pixels
        _jpeg(_blocks(480, 360), orientation=6),  # portrait by its EXIF tag (a phone's way)
        _jpeg(_blocks(300, 500)),  # portrait and narrower than 3:4: turned, then cropped
    ],
    ids=["landscape", "portrait-pixels", "portrait-exif", "tall-portrait"],
)
def test_the_photo_is_framed_as_the_engine_frames_it(page: Page, photo: bytes) -> None:
    page.goto("/")
    src = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    framed = page.evaluate(FRAME, {"src": src, "width": WIDTH, "height": HEIGHT})
    assert (framed["width"], framed["height"]) == (WIDTH, HEIGHT)
    shown = np.array(framed["rgba"], dtype=np.float64).reshape(HEIGHT, WIDTH, 4)
    assert shown[..., 3].min() == 255  # no transparent band: the photo covers the canvas
    expected = fit_to_geometry(decode_image(photo), Geometry(width=WIDTH, height=HEIGHT))
    # Block edges blur differently in the two resamplers; flat areas must agree.
    diff = np.abs(shown[..., :3] - expected.astype(np.float64)).mean(axis=2)
    assert np.median(diff) < 8 and np.mean(diff > 60) < 0.03, (np.median(diff), np.mean(diff > 60))
