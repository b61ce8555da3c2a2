"""The first photo's fingerprint (crosslist.imports.photos): the same picture re-hosted by another marketplace
(resized, re-compressed, another format) hashes within a few bits; other pictures do not; what is not a picture, or
cannot be fetched in time, has no hash and stops nothing."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from random import Random

import pytest
from PIL import Image, ImageDraw

from crosslist.imports.photos import (
    SAME_PHOTO_BITS,
    NotAPicture,
    difference_hash,
    distance,
    hash_photos,
    same_photo,
    to_text,
)


def picture(seed: int, width: int = 128, fmt: str = "PNG", quality: int = 85) -> bytes:
    """A photo-like picture: overlapping discs of random colours, drawn relative to the size (the same picture at
    any size). Flat pictures (one shape on a plain background) are closer to each other than photos are."""
    rng = Random(seed)
    image = Image.new("RGB", (width, width), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y, radius = rng.random(), rng.random(), 0.05 + rng.random() * 0.25
        box = ((x - radius) * width, (y - radius) * width, (x + radius) * width, (y + radius) * width)
        draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, fmt, quality=quality)
    return out.getvalue()


def fingerprint(content: bytes) -> str:
    return to_text(difference_hash(content))


def test_the_same_picture_re_hosted_smaller_and_as_jpeg_is_the_same_photo() -> None:
    for seed in range(20):
        original = fingerprint(picture(seed))
        for copy in (picture(seed, 96, "JPEG", 75), picture(seed, 72, "JPEG", 60), picture(seed, 300, "WEBP")):
            assert distance(original, fingerprint(copy)) <= SAME_PHOTO_BITS, seed
            assert same_photo(original, fingerprint(copy))


def test_other_pictures_are_other_photos() -> None:
    hashes = [fingerprint(picture(seed)) for seed in range(200)]
    closest = min(distance(a, b) for n, a in enumerate(hashes) for b in hashes[n + 1 :])
    assert closest > SAME_PHOTO_BITS
    assert not same_photo(hashes[0], None)
    assert not same_photo(None, None)


def test_what_is_not_a_picture_has_no_hash() -> None:
    for content in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"", picture(1, fmt="JPEG")[:40]):
        with pytest.raises(NotAPicture):
            difference_hash(content)


def test_a_picture_claiming_billions_of_pixels_is_refused_before_it_is_decoded() -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
    with pytest.raises(NotAPicture):
        difference_hash(bomb)


def test_each_url_is_fetched_once_and_one_that_fails_or_lags_is_left_without_a_hash() -> None:
    fetched: list[str] = []
    release = threading.Event()

    def download(url: str) -> bytes:
        fetched.append(url)
        if url.endswith("gone.jpg"):
            raise OSError("404")
        if url.endswith("slow.jpg"):
            release.wait(10)
        return picture(1)

    urls = ["https://i.test/1.jpg", "https://i.test/gone.jpg", "https://i.test/1.jpg", "https://i.test/slow.jpg"]
    try:
        hashes = hash_photos(urls, download, seconds=0.5)
    finally:
        release.set()
    assert hashes == {
        "https://i.test/1.jpg": fingerprint(picture(1)),
        "https://i.test/gone.jpg": None,
        "https://i.test/slow.jpg": None,
    }
    assert sorted(fetched) == sorted(set(urls))
    assert hash_photos([], download, seconds=1) == {}
