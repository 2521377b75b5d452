"""Awkward and hostile image files, made in memory for the bad-input tests."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient_rgb(width: int = 160, height: int = 120) -> Image.Image:
    """A left-to-right red ramp with a blue top half: orientation is visible in the pixels."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    arr[: height // 2, :, 2] = 255
    return Image.fromarray(arr)


def jpeg(width: int = 160, height: int = 120) -> bytes:
    return encode(gradient_rgb(width, height), "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    data = jpeg(320, 240)
    return data[: len(data) // 2]


def text_as_jpg() -> bytes:
    return b"This is a text file with a .jpg name.\n" * 20


def huge_png_header(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny PNG whose header claims 100 megapixels (Pillow reads the size from IHDR)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)  # far too little data: never decoded anyway
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def cmyk_jpeg() -> bytes:
    return encode(gradient_rgb().convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    arr = (np.linspace(0, 65535, 160 * 120).reshape(120, 160)).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")  # uint16 arrays become mode I;16


def rgba_png() -> bytes:
    img = gradient_rgb().convert("RGBA")
    img.putalpha(128)
    return encode(img, "PNG")


def palette_png() -> bytes:
    return encode(gradient_rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def exif_rotated_jpeg(orientation: int = 6) -> tuple[bytes, Image.Image]:
    """A landscape JPEG stored sideways (portrait pixels) with an EXIF orientation tag.

    Returns the bytes and the upright image it should decode to.
    """
    upright = gradient_rgb(160, 120)
    # Orientation 6 means "rotate 90 degrees clockwise to display": store it turned back.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif), upright


def damaged_exif_jpeg() -> bytes:
    """A photo whose EXIF says "turn 90 degrees" but holds a tag of the wrong type
    (SamplesPerPixel written as text, as some phones and editors do): Pillow reads the pixels
    and fails when it rewrites the EXIF while turning."""
    import struct

    entries = [
        struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", 6, 0),  # Orientation = 6
        struct.pack(">HHI", 0x0115, 2, 4) + b"Cam\x00",  # SamplesPerPixel as ASCII
    ]
    ifd = struct.pack(">H", len(entries)) + b"".join(entries) + struct.pack(">I", 0)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd
    buf = io.BytesIO()
    gradient_rgb().save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


def eps_file() -> bytes:
    """A tiny Encapsulated PostScript file (which Pillow would hand to Ghostscript)."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
        b"0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n"
    )
