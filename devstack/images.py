"""Demo product photos served by the devstack, so seeded products have image URLs that resolve locally.

Each number is its own picture: a blurred backdrop under a few rectangles and ellipses, all drawn from
`Random(number)` in coordinates relative to the side, so the same number at another size, or re-compressed as a
marketplace re-hosts it (`demo_photo`), is the same picture to a difference hash (a few bits apart), and two numbers
are two pictures (about 32 bits apart).
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from random import Random
from typing import Literal

from PIL import Image, ImageDraw

PhotoFormat = Literal["png", "jpeg"]

# Smaller pictures are drawn at this side and shrunk: edges then fall at the same places whatever the size asked
# (drawn straight at 72 px, a shape's edge moves by up to half a pixel, enough to flip a difference hash's bit).
_DRAWN_SIDE = 256
# The backdrop: a square grid of this many random colours a side, blurred up to the whole picture. It has no flat
# area, which matters: two equal neighbouring areas are a tie that re-compression breaks either way (a flipped bit).
_BACKDROP_CELLS = 9
_SHAPES = (6, 10)  # how many shapes, at least and at most
_SHAPE_SIDES = (0.06, 0.3)  # a shape's width and height, as a fraction of the picture's side
_JPEG_QUALITY = 80  # as marketplaces re-compress uploads
REHOSTED_WIDTHS = range(16, 1601)  # the widths a re-hosted copy may be asked at (pixels)
# Photos are drawn per request, and every import of a shop asks for all its photos again: pictures up to this wide
# (a few KB each; a marketplace's thumbnails, the uploads) are kept, as many as a whole seeded shop shows.
_KEPT_UP_TO_WIDTH, _KEPT_PHOTOS = 256, 4096


def demo_png(number: int, size: int = 64) -> bytes:
    """Picture `number` as a square PNG `size` pixels wide (its original upload)."""
    return demo_photo(number, width=size, fmt="png")


def demo_photo(number: int, *, width: int, fmt: PhotoFormat) -> bytes:
    """Picture `number`, `width` pixels square, as a PNG (the seller's upload) or a JPEG (a marketplace's copy)."""
    if width <= _KEPT_UP_TO_WIDTH:
        return _kept_photo(number, width, fmt)
    return _encoded_photo(number, width, fmt)


def _encoded_photo(number: int, width: int, fmt: PhotoFormat) -> bytes:
    encoded = io.BytesIO()
    if fmt == "jpeg":
        _picture(number, width).save(encoded, "JPEG", quality=_JPEG_QUALITY)
    else:
        _picture(number, width).save(encoded, "PNG")
    return encoded.getvalue()


_kept_photo = lru_cache(maxsize=_KEPT_PHOTOS)(_encoded_photo)


def _picture(number: int, side: int) -> Image.Image:
    """Picture `number` drawn `side` pixels square."""
    random = Random(number)
    drawn = max(side, _DRAWN_SIDE)
    backdrop = Image.new("RGB", (_BACKDROP_CELLS, _BACKDROP_CELLS))
    backdrop.putdata([_colour(random) for _ in range(_BACKDROP_CELLS**2)])
    picture = backdrop.resize((drawn, drawn), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    for _ in range(random.randint(*_SHAPES)):
        width, height = random.uniform(*_SHAPE_SIDES), random.uniform(*_SHAPE_SIDES)
        left, top = random.uniform(-0.05, 1.05 - width), random.uniform(-0.05, 1.05 - height)
        box = (left * drawn, top * drawn, (left + width) * drawn, (top + height) * drawn)
        shape = draw.ellipse if random.random() < 0.5 else draw.rectangle
        shape(box, fill=_colour(random))
    return picture if drawn == side else picture.resize((side, side), Image.Resampling.LANCZOS)


def _colour(random: Random) -> tuple[int, int, int]:
    return random.randrange(256), random.randrange(256), random.randrange(256)


def rehosted_width(asked: str) -> int | str:
    """The width a re-hosted copy is asked at (`?w=96`), or what is wrong with it."""
    if asked.isascii() and asked.isdecimal() and len(asked) <= 4 and int(asked) in REHOSTED_WIDTHS:
        return int(asked)
    return f"w must be a width from {REHOSTED_WIDTHS.start} to {REHOSTED_WIDTHS.stop - 1} pixels"


_PHOTO_URL = re.compile(r"/(\d+)\.(png|jpg)(?:\?w=(\d+))?$")


def photo_at(url: str) -> bytes | None:
    """The picture a seeded shop's photo URL shows (`…/12.png`, or a re-hosted `…/12.jpg?w=96`), whatever its host:
    tests serve the shops' photos with it, without the devstack. None for a URL of another shape."""
    found = _PHOTO_URL.search(url)
    if found is None:
        return None
    number, extension, width = found.groups()
    if extension == "png":
        return demo_png(int(number))
    size = rehosted_width(width or "")
    return demo_photo(int(number), width=size, fmt="jpeg") if isinstance(size, int) else None
