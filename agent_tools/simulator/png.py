"""A minimal PNG writer (8-bit RGB, no interlace) on ``zlib`` and ``struct`` alone.

Pillow is deliberately not a dependency; this is all the simulator needs to return real images.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: Iterable[bytes], *, level: int = 6) -> bytes:
    """Encode ``height`` rows of ``width`` packed RGB pixels (3 bytes each) as a PNG file."""
    if width <= 0 or height <= 0:
        raise ValueError("a PNG needs a positive width and height")
    raw = bytearray()
    count = 0
    for row in rows:
        if len(row) != width * 3:
            raise ValueError(f"row {count} has {len(row)} bytes, expected {width * 3}")
        raw += b"\x00"  # filter type None: the gradients compress well enough without filtering
        raw += row
        count += 1
    if count != height:
        raise ValueError(f"got {count} rows, expected {height}")
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(raw), level)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
