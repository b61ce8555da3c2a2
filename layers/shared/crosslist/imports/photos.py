"""The first photo's fingerprint: a 64-bit difference hash, so that the same picture re-hosted by another marketplace
(resized, re-compressed, another format) is recognised, and two different pictures are not.

The picture is shrunk to 9 by 8 grey pixels and each bit says whether a pixel is brighter than its right-hand
neighbour: resizing and re-encoding keep those gradients, another photo does not. Two hashes within
SAME_PHOTO_BITS of each other are the same picture. Pillow is imported here only, by the function hashing photos
(process_job during an import), never by the WebSocket handlers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait

HASH_BITS = 64
# At most this many bits apart: the same picture (re-encoded copies differ by a few bits; two photos by ~32).
SAME_PHOTO_BITS = 10
# A decoded picture larger than this is refused (a decompression bomb); phones take about 50 megapixels at most.
MAX_PIXELS = 80_000_000
FETCHES_AT_ONCE = 8


class NotAPicture(Exception):
    """The bytes are not a picture Pillow can read."""


def difference_hash(content: bytes) -> int:
    """The picture's 64-bit difference hash; NotAPicture when it cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as picture:
            if picture.width * picture.height > MAX_PIXELS:
                raise NotAPicture(f"{picture.width}x{picture.height} pixels is larger than any photo")
            picture.draft("L", (64, 64))  # JPEG: decoded at a fraction of its size, far faster
            grey = picture.convert("L").resize((9, 8), Image.Resampling.BOX)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise NotAPicture(str(error) or type(error).__name__) from None
    pixels = grey.tobytes()  # one byte per grey pixel, row by row
    bits = 0
    for row in range(8):
        for column in range(8):
            left, right = pixels[row * 9 + column], pixels[row * 9 + column + 1]
            bits = (bits << 1) | (left > right)
    return bits


def to_text(bits: int) -> str:
    """A hash as it is stored: 16 hexadecimal digits."""
    return f"{bits:016x}"


def distance(first: str, second: str) -> int:
    """How many of the two hashes' 64 bits differ."""
    return (int(first, 16) ^ int(second, 16)).bit_count()


def same_photo(first: str | None, second: str | None) -> bool:
    return first is not None and second is not None and distance(first, second) <= SAME_PHOTO_BITS


def hash_photos(urls: Iterable[str], download: Callable[[str], bytes], *, seconds: float) -> dict[str, str | None]:
    """Each URL's hash (None when it could not be downloaded or decoded in time): a missing hash only means the photo
    says nothing about the match, so no failure stops an import."""
    unique = list(dict.fromkeys(urls))
    hashes: dict[str, str | None] = dict.fromkeys(unique)
    if not unique:
        return hashes

    def one(url: str) -> str | None:
        try:
            return to_text(difference_hash(download(url)))
        except Exception:
            return None

    pool = ThreadPoolExecutor(max_workers=min(FETCHES_AT_ONCE, len(unique)))
    futures = {pool.submit(one, url): url for url in unique}
    done, _late = wait(futures, timeout=seconds)
    for future in done:
        hashes[futures[future]] = future.result()
    pool.shutdown(wait=False, cancel_futures=True)
    return hashes
