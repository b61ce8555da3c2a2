"""The devstack's demo photos (devstack.images): each number is its own picture, and a marketplace's re-hosted copy
of it (another size, re-compressed as JPEG) is the same picture to crosslist's difference hash, as real photos are;
the devstack serves the original and the copies."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from crosslist.imports.photos import SAME_PHOTO_BITS, difference_hash
from devstack.images import PhotoFormat, demo_photo, demo_png, rehosted_width
from devstack.stack import DevStack, StackConfig

# The original upload and the marketplaces' copies of it (eBay's, Etsy's and Vinted's widths).
COPIES: tuple[tuple[PhotoFormat, int], ...] = (("png", 128), ("jpeg", 96), ("jpeg", 80), ("jpeg", 72))
COPIES_APART = 6  # at most this many bits between two copies of one picture


def bits_apart(first: int, second: int) -> int:
    return (first ^ second).bit_count()


def test_the_copies_of_a_picture_are_within_6_bits_of_each_other() -> None:
    worst = 0
    for number in range(1, 121):
        hashes = [difference_hash(demo_photo(number, width=width, fmt=fmt)) for fmt, width in COPIES]
        worst = max(worst, *(bits_apart(one, other) for one, other in combinations(hashes, 2)))

    assert worst <= COPIES_APART


def test_two_pictures_are_hardly_ever_within_10_bits_of_each_other() -> None:
    hashes = [difference_hash(demo_photo(number, width=128, fmt="png")) for number in range(1, 401)]

    distances = [bits_apart(one, other) for one, other in combinations(hashes, 2)]

    close = sum(distance <= SAME_PHOTO_BITS for distance in distances)
    assert close < len(distances) / 1000, f"{close} of {len(distances)} pairs, the closest {min(distances)} bits apart"
    assert min(distances) > COPIES_APART  # no two pictures as close as two copies of one
    assert 30 <= sum(distances) / len(distances) <= 34  # about half the bits differ, as between two photos


def test_a_demo_png_is_the_picture_at_its_size_and_the_same_bytes_every_time() -> None:
    with Image.open(io.BytesIO(demo_png(3))) as small, Image.open(io.BytesIO(demo_png(3, 400))) as large:
        assert (small.format, small.size, large.size) == ("PNG", (64, 64), (400, 400))
    assert demo_png(3) == demo_photo(3, width=64, fmt="png") == demo_png(3, size=64)
    assert bits_apart(difference_hash(demo_png(3)), difference_hash(demo_png(3, 400))) <= COPIES_APART
    with Image.open(io.BytesIO(demo_photo(3, width=96, fmt="jpeg"))) as copy:
        assert (copy.format, copy.size) == ("JPEG", (96, 96))


def test_a_rehosted_width_is_a_whole_number_of_pixels_from_16_to_1600() -> None:
    assert [rehosted_width(asked) for asked in ("96", "16", "1600", "0072")] == [96, 16, 1600, 72]
    for refused in ("", "15", "1601", "96px", "-96", " 96", "9.6", "٩٦", "9" * 5000):
        assert rehosted_width(refused) == "w must be a width from 16 to 1600 pixels"


# the devstack's route ------------------------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(StackConfig(data_dir=tmp_path))  # nothing started: its routes only
    yield stack
    stack._loop.close()  # the gateway's event loop, made by the constructor and never run here


def test_the_devstack_serves_the_original_as_png_and_a_marketplaces_copy_as_jpeg(stack: DevStack) -> None:
    async def run() -> None:
        app = web.Application()
        app.router.add_routes(stack._devstack_routes())
        async with TestClient(TestServer(app)) as client:
            original = await client.get("/__devstack/images/12.png")
            assert (original.status, original.content_type) == (200, "image/png")
            assert await original.read() == demo_png(12)

            copy = await client.get("/__devstack/images/12.jpg", params={"w": "96"})
            assert (copy.status, copy.content_type) == (200, "image/jpeg")
            assert await copy.read() == demo_photo(12, width=96, fmt="jpeg")

            for refused in (
                "/__devstack/images/12.jpg?w=2000",
                "/__devstack/images/12.jpg?w=big",
                "/__devstack/images/12.jpg",
            ):
                answer = await client.get(refused)
                assert answer.status == 400
                assert (await answer.json())["message"] == "w must be a width from 16 to 1600 pixels"

    asyncio.run(run())
