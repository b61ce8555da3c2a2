"""Demo product photos served by the devstack, so seeded products have image URLs that resolve locally."""

from __future__ import annotations

import struct
import zlib

PALETTE = [(31, 97, 141), (192, 57, 43), (39, 174, 96), (142, 68, 173), (243, 156, 18), (44, 62, 80)]


def demo_png(number: int, size: int = 64) -> bytes:
    """A small solid-colour PNG, different for each number."""
    red, green, blue = PALETTE[number % len(PALETTE)]
    row = b"\x00" + bytes((red, green, blue)) * size
    pixels = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
