"""Bad and awkward input: each case gets the expected answer (error code or RGB image)."""

from __future__ import annotations

import numpy as np
import pytest

from skinscan_engine.engine import Engine
from skinscan_engine.preprocessing import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image
from tests import image_samples as samples


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (samples.truncated_jpeg(), "corrupt"),
        (samples.text_as_jpg(), "not_an_image"),
        (samples.huge_png_header(), "too_many_pixels"),
        (samples.huge_png_header(30_000, 30_000), "too_many_pixels"),
    ],
    ids=["zero-bytes", "truncated-jpeg", "text-named-jpg", "100-megapixel-png", "900-megapixel"],
)
def test_unreadable_input_is_a_clear_error(data: bytes, code: str, engine: Engine) -> None:
    with pytest.raises(ImageDecodeError) as info:
        engine.prepare(data)
    assert info.value.code == code
    assert info.value.message
    if code == "too_many_pixels":  # our limit, whichever check fired (not Pillow's wording)
        assert f"the limit is {DEFAULT_MAX_PIXELS} pixels" in info.value.message


def test_too_many_bytes() -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(samples.jpeg(), max_bytes=100)
    assert info.value.code == "too_large"


@pytest.mark.parametrize(
    ("data", "source_mode"),
    [
        (samples.cmyk_jpeg(), "CMYK"),
        (samples.png16(), "I;16"),
        (samples.rgba_png(), "RGBA"),
        (samples.palette_png(), "P"),
    ],
    ids=["cmyk", "16-bit", "rgba", "palette"],
)
def test_every_mode_becomes_rgb(data: bytes, source_mode: str, engine: Engine) -> None:
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(data)).mode.startswith(source_mode[:1])
    img = decode_image(data)
    assert img.mode == "RGB" and img.size == (160, 120)
    prepared = engine.prepare(data)
    assert prepared.pixels.shape == (96, 128, 3) and prepared.pixels.dtype == np.uint8
    [pred] = engine.predict([data])
    assert pred.result["verdict"] in ("benign", "malignant", "unknown")


def test_sixteen_bit_keeps_its_range() -> None:
    arr = np.asarray(decode_image(samples.png16()))
    assert arr.min() == 0 and arr.max() == 255  # scaled down, not clipped to white


def test_sixteen_bit_keeps_its_brightness() -> None:
    """A dark 16-bit photo stays dark: 16 bits' full scale maps to 8 bits', not the image's
    own brightest pixel (that stretched every under-exposed photo's contrast)."""
    from PIL import Image

    quarter = (np.linspace(0, 16383, 160 * 120).reshape(120, 160)).astype(np.uint16)
    arr = np.asarray(decode_image(samples.encode(Image.fromarray(quarter), "PNG")), dtype=int)
    assert arr.max() == 64  # 16383 / 257, not 255
    eight_bit = (quarter.astype(np.float64) / 257).round().astype(np.uint8)
    same = np.asarray(decode_image(samples.encode(Image.fromarray(eight_bit), "PNG")), dtype=int)
    assert np.abs(arr - same).max() <= 1


def test_thirty_two_bit_grey_in_eight_bit_range_stays_as_it_is() -> None:
    from PIL import Image

    values = np.tile(np.arange(256, dtype=np.int32), (120, 1))[:, :160]
    tiff = samples.encode(Image.fromarray(values, mode="I"), "TIFF")
    arr = np.asarray(decode_image(tiff), dtype=int)
    assert arr.max() == 159 and arr[0, 100].tolist() == [100, 100, 100]


def test_a_damaged_exif_block_does_not_refuse_the_photo(engine: Engine) -> None:
    """The pixels are fine: the photo is read (unturned) instead of failing the request, or a
    whole batch chunk with it."""
    data = samples.damaged_exif_jpeg()
    img = decode_image(data)
    assert img.mode == "RGB" and img.size == (160, 120)
    out = engine.predict_safe([data, samples.jpeg()])
    assert [type(o).__name__ for o in out] == ["Prediction", "Prediction"]


def test_formats_that_are_no_photo_are_refused() -> None:
    """PostScript (which Pillow would run Ghostscript on) is not decoded at all."""
    with pytest.raises(ImageDecodeError) as info:
        decode_image(samples.eps_file())
    assert info.value.code == "not_an_image"


def test_pil_images_are_turned_and_checked_like_bytes(engine: Engine) -> None:
    from io import BytesIO

    from PIL import Image

    data, _upright = samples.exif_rotated_jpeg()
    from_bytes = engine.prepare(data)
    from_pil = engine.prepare(Image.open(BytesIO(data)))
    assert np.array_equal(from_bytes.pixels, from_pil.pixels)
    truncated = Image.open(BytesIO(samples.truncated_jpeg()))  # opened lazily: fails on load
    out = engine.predict_safe([truncated])
    assert isinstance(out[0], ImageDecodeError) and out[0].code == "corrupt"


def test_rgba_is_composited_on_white() -> None:
    arr = np.asarray(decode_image(samples.rgba_png()), dtype=int)
    original = np.asarray(samples.gradient_rgb(), dtype=int)
    expected = (original * 128 + 255 * 127) // 255  # half-transparent over white
    assert np.abs(arr - expected).max() <= 2


def test_exif_orientation_is_applied() -> None:
    data, upright = samples.exif_rotated_jpeg()
    img = decode_image(data)
    assert img.size == upright.size
    diff = np.abs(np.asarray(img, dtype=int) - np.asarray(upright, dtype=int))
    assert diff.mean() < 8  # JPEG noise only; a wrong turn would differ by ~100


def test_predict_safe_keeps_going(engine: Engine, ham_images: list[bytes]) -> None:
    inputs = [ham_images[0], b"", samples.text_as_jpg(), ham_images[1]]
    out = engine.predict_safe(inputs)
    assert [type(o).__name__ for o in out] == [
        "Prediction",
        "ImageDecodeError",
        "ImageDecodeError",
        "Prediction",
    ]
