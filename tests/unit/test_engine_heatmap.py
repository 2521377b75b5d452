"""Heatmap rendering: the colormap table, the raw greyscale PNG and the overlay."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from skinscan_engine import heatmap


def test_jet_runs_blue_to_red() -> None:
    lut = heatmap.JET
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0, 2] > 100 and lut[0, 0] == 0  # dark blue at 0
    assert lut[-1, 0] > 100 and lut[-1, 2] == 0  # dark red at 1
    assert lut[128, 1] == 255 and lut[128, 0] < 200 and lut[128, 2] < 200  # green-ish middle


def test_raw_png_is_8bit_grey_of_the_map() -> None:
    cam = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
    img = Image.open(io.BytesIO(heatmap.heatmap_png(cam)))
    assert img.mode == "L" and img.size == (16, 12)
    arr = np.asarray(img)
    assert arr[0, 0] == 0 and arr[-1, -1] == 255
    resized = Image.open(io.BytesIO(heatmap.heatmap_png(cam, 32, 24)))
    assert resized.size == (32, 24)


def test_overlay_blends_colour_on_photo() -> None:
    photo = np.full((24, 32, 3), 200, dtype=np.uint8)
    cam = np.zeros((12, 16), dtype=np.float32)
    cam[6:, 8:] = 1.0
    out = heatmap.overlay(photo, cam, alpha=0.5)
    assert out.shape == (24, 32, 3)
    cold, hot = out[0, 0], out[-1, -1]
    assert cold[2] > cold[0]  # blue where the map is low
    assert hot[0] > hot[2]  # red where it is high
    png = heatmap.overlay_png(photo, cam)
    assert Image.open(io.BytesIO(png)).mode == "RGB"
