"""Image decoding and preprocessing: the one path every image takes, in training and in serving.

Decoding is defensive (size caps against decompression bombs, clear errors for anything that
is not a readable image); geometry and normalisation are shared by the training loop, the
engine and the container so that the model always sees pixels prepared the same way.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

#: Defaults for untrusted input: 20 MB of encoded bytes, 40 megapixels decoded.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

#: The raster formats decoded: photos (JPEG, which also opens the MPO files some phone cameras
#: write) and the plain image formats a folder of images may hold. Never Pillow's others: EPS
#: would run Ghostscript on untrusted bytes, and no photo arrives as a PSD, ICO or FITS file.
READABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

#: Minkowski norm of the shades-of-grey illuminant estimate (6 is the usual choice for
#: dermoscopy: between grey world, p = 1, and max-RGB, p = infinity).
SHADES_OF_GREY_POWER = 6.0
#: Floor of an estimated illuminant channel: caps the gain on a nearly black image at 20x.
MIN_ILLUMINANT = 0.05


class ImageDecodeError(ValueError):
    """An input that cannot be turned into an image; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Geometry:
    """Input size and normalisation of the model (stored in the model card).

    ``illuminant``: if set, every image is first re-lit to this colour of light (shades of
    grey colour constancy), so that the network sees lesions, not the dermatoscope's light.
    """

    width: int = 128
    height: int = 96
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    illuminant: tuple[float, float, float] | None = None


def decode_image(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image, or raise :class:`ImageDecodeError`.

    EXIF orientation is applied; every mode (palette, RGBA, CMYK, 16-bit, grey) becomes RGB.
    The pixel cap is checked from the header, before any pixel is decoded.
    """
    if not data:
        raise ImageDecodeError("empty", "The file is empty.")
    if len(data) > max_bytes:
        raise ImageDecodeError(
            "too_large", f"The file is {len(data)} bytes; the limit is {max_bytes} bytes."
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns (and errors past 2x) on its own global cap; we check our cap ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.init()  # registers every plugin, so that ``formats`` can name them
            img = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    "too_many_pixels",
                    f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels.",
                )
            img.load()
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not_an_image", "The file is not an image we can read.") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own cap (far above ours) fired inside Image.open, before our check; its
        # message names Pillow's limit, not ours, so say ours.
        raise ImageDecodeError(
            "too_many_pixels", f"The image has too many pixels; the limit is {max_pixels} pixels."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(
            "corrupt", f"The image is truncated or corrupt ({exc.__class__.__name__})."
        ) from exc
    return to_rgb(upright(img))


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as it is when the EXIF is damaged.

    Pillow rewrites the EXIF block while turning, and a malformed one (a tag of the wrong type,
    as some phones and editors write) raises anything from ``struct.error`` to ``TypeError``:
    the pixels are fine, so the photo is not refused for its metadata.
    """
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (transparency composited on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: its full scale (65535) to 8 bits' (255), whatever the image's own
        # brightest pixel (scaling by that would brighten every dark photo). 32-bit integers
        # ("I") have no known scale: values past 8 bits are scaled by their maximum.
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        sixteen_bit = img.mode.startswith("I;16")
        scale = 1 / 257 if sixteen_bit else (255.0 / hi if hi > 255 else 1.0)
        img = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def fit_to_geometry(img: Image.Image, geometry: Geometry) -> np.ndarray:
    """Turn portrait images landscape, centre-crop to the model's aspect, resize: HxWx3 uint8.

    Dermoscopy has no "up", so a 90 degree turn loses nothing and keeps more of the lesion
    than cropping a portrait photo to a landscape frame would.
    """
    target_landscape = geometry.width >= geometry.height
    if (img.width >= img.height) != target_landscape and img.width != img.height:
        img = img.transpose(Image.Transpose.ROTATE_90)
    aspect = geometry.width / geometry.height
    w, h = img.size
    if w / h > aspect:
        new_w = round(h * aspect)
        left = (w - new_w) // 2
        img = img.crop((left, 0, left + new_w, h))
    elif w / h < aspect:
        new_h = round(w / aspect)
        top = (h - new_h) // 2
        img = img.crop((0, top, w, top + new_h))
    if img.size != (geometry.width, geometry.height):
        img = img.resize(
            (geometry.width, geometry.height), Image.Resampling.BILINEAR, reducing_gap=None
        )
    return np.asarray(img, dtype=np.uint8)


def load_for_model(data: bytes, geometry: Geometry, **caps: int) -> np.ndarray:
    """Decode untrusted bytes and fit them to the model: HxWx3 uint8."""
    return fit_to_geometry(decode_image(data, **caps), geometry)


def to_batch(images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """Stack HxWx3 uint8 arrays into an Nx3xHxW uint8 tensor in channels-last memory."""
    arr = np.ascontiguousarray(np.stack(images) if not isinstance(images, np.ndarray) else images)
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def normalize(batch: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """uint8 Nx3xHxW to float32 normalised by the model's mean and std (channels-last)."""
    return standardize(batch.float().div_(255.0), geometry)


def estimate_illuminant(batch: torch.Tensor) -> torch.Tensor:
    """Shades-of-grey estimate of each image's light: float Nx3xHxW in [0, 1] to N x 3."""
    p = SHADES_OF_GREY_POWER
    return batch.float().pow(p).mean(dim=(2, 3)).pow(1.0 / p).clamp_min(MIN_ILLUMINANT)


def relight(batch: torch.Tensor, illuminant: Sequence[float]) -> torch.Tensor:
    """Re-light float Nx3xHxW images in [0, 1] so that each one's estimated light is
    ``illuminant`` (a von Kries gain per channel; Finlayson and Trezzi's shades of grey)."""
    target = torch.tensor(illuminant, dtype=torch.float32).to(batch.device, non_blocking=True)
    gain = target / estimate_illuminant(batch)
    return (batch * gain[:, :, None, None].to(batch.dtype)).clamp_(0.0, 1.0)


def standardize(batch: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Float Nx3xHxW in [0, 1] to the model's input: re-lit if the model asks for it, then
    (x - mean) / std, channels-last."""
    if geometry.illuminant is not None:
        batch = relight(batch, geometry.illuminant)
    # Built on the host and sent non-blocking: a blocking copy first waits for a busy GPU.
    mean = torch.tensor(geometry.mean).view(1, 3, 1, 1).to(batch.device, non_blocking=True)
    std = torch.tensor(geometry.std).view(1, 3, 1, 1).to(batch.device, non_blocking=True)
    return ((batch - mean) / std).contiguous(memory_format=torch.channels_last)
