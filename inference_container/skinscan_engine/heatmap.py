"""Heatmap images: a colour overlay blended on the photo and the raw map as 8-bit grey PNG.

The colormap is a 256-entry lookup table computed here (the classic "jet" ramp, the look
pytorch-grad-cam's overlays have), so serving needs neither matplotlib nor OpenCV.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def _jet_lut() -> np.ndarray:
    """256 x 3 uint8: dark blue -> blue -> cyan -> yellow -> red -> dark red."""
    v = np.linspace(0.0, 1.0, 256)
    # Each channel is a clipped triangle centred at 3/4 (red), 1/2 (green), 1/4 (blue).
    rgb = np.stack([1.5 - np.abs(4 * v - c) for c in (3.0, 2.0, 1.0)], axis=1)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


JET = _jet_lut()


def to_uint8(cam: np.ndarray) -> np.ndarray:
    """A [0, 1] map as uint8 (rounded, clipped)."""
    return np.clip(np.rint(cam * 255.0), 0, 255).astype(np.uint8)


def resize_map(cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float map (no-op when the size already matches)."""
    if cam.shape == (height, width):
        return cam
    img = Image.fromarray(np.asarray(cam, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def colorize(cam: np.ndarray, lut: np.ndarray = JET) -> np.ndarray:
    """HxW map in [0, 1] -> HxWx3 uint8 through the lookup table."""
    return lut[to_uint8(cam)]


def overlay(photo: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend the coloured map onto an HxWx3 uint8 photo (the map is resized to the photo)."""
    h, w = photo.shape[:2]
    color = colorize(resize_map(cam, w, h)).astype(np.float32)
    blended = (1.0 - alpha) * photo.astype(np.float32) + alpha * color
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def png_bytes(array: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode an HxW (grey) or HxWx3 (RGB) uint8 array as PNG."""
    buf = io.BytesIO()
    # Fastest zlib level: encoding is most of the rendering cost, and latency matters more
    # than the few kilobytes the default level would save on a 384 px image.
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def heatmap_png(cam: np.ndarray, width: int | None = None, height: int | None = None) -> bytes:
    """The raw map as an 8-bit greyscale PNG (optionally resized), for clients to render."""
    if width and height:
        cam = resize_map(cam, width, height)
    return png_bytes(to_uint8(cam))


def overlay_png(photo: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> bytes:
    """The map blended on the photo as an RGB PNG."""
    return png_bytes(overlay(photo, cam, alpha))
