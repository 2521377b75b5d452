"""Draw the app icons (run once; the PNGs are committed): ``python web/make_icons.py``.

A lens over a round spot on a teal tile. The maskable variant keeps the drawing inside the
central 80% safe zone so launchers can crop it to any shape.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
TEAL = (14, 116, 144)
SKIN = (244, 214, 190)
SPOT = (120, 72, 48)
WHITE = (255, 255, 255)
SCALE = 4  # draw large, then downsample: smooth edges without antialiasing support


def draw_icon(size: int, *, maskable: bool = False) -> Image.Image:
    big = size * SCALE
    img = Image.new("RGB" if maskable else "RGBA", (big, big), TEAL if maskable else (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if not maskable:
        d.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=TEAL)
    # Everything below lives in a box: the whole tile, or the maskable safe zone.
    inset = big * (0.18 if maskable else 0.1)
    box = big - 2 * inset

    def at(fx: float, fy: float) -> tuple[float, float]:
        return inset + fx * box, inset + fy * box

    # Skin disc with a spot, seen through the lens.
    cx, cy = at(0.42, 0.42)
    r = box * 0.3
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=SKIN)
    sr = r * 0.42
    d.ellipse((cx - sr, cy - sr * 0.85, cx + sr, cy + sr * 0.85), fill=SPOT)
    ring = box * 0.055
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=WHITE, width=round(ring))
    # Handle.
    hx0, hy0 = cx + r * 0.72, cy + r * 0.72
    hx1, hy1 = at(0.9, 0.9)
    d.line((hx0, hy0, hx1, hy1), fill=WHITE, width=round(box * 0.11))
    d.ellipse(
        (hx1 - box * 0.055, hy1 - box * 0.055, hx1 + box * 0.055, hy1 + box * 0.055), fill=WHITE
    )
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    out = HERE / "icons"
    out.mkdir(exist_ok=True)
    for size in (192, 512):
        draw_icon(size).save(out / f"icon-{size}.png", optimize=True)
    draw_icon(512, maskable=True).save(out / "icon-maskable-512.png", optimize=True)
    draw_icon(180, maskable=True).save(out / "apple-touch-icon.png", optimize=True)
    print(f"icons written to {out}")


if __name__ == "__main__":
    main()
