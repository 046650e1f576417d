"""Small image previews for MCP results: a downscaled PNG made without Pillow.

``decode_png`` reads 8-bit, non-interlaced PNGs (grey, RGB, palette, with or without alpha) with
``zlib`` alone, ``downscale`` samples it to at most ``PREVIEW_SIDE`` pixels a side, and the
simulator's encoder writes the result. Anything it cannot read (JPEG, 16-bit, interlaced, huge)
simply gets no preview. Job and budget wording lives in ``agent.results`` (shared with other agents).
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

# -- PNG previews ----------------------------------------------------------------------------

PREVIEW_SIDE = 256
"""Longest side of a preview, in pixels: enough to judge composition, small for the context."""
MAX_DECODE_PIXELS = 4_300_000
"""Larger images get no preview: pure-Python unfiltering costs about a second per megapixel."""
MAX_PREVIEW_BYTES = 400_000

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class PngError(ValueError):
    """A PNG this decoder does not read (or not a PNG at all)."""


def png_size(data: bytes) -> tuple[int, int]:
    if not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        raise PngError("not a PNG file")
    return struct.unpack(">II", data[16:24])


@dataclass(frozen=True)
class DecodedPng:
    """Unfiltered rows of an 8-bit PNG in its own colour type (1–4 bytes per pixel)."""

    width: int
    height: int
    color: int
    palette: bytes
    rows: list[bytes]

    def pixel(self, row: bytes, x: int) -> bytes:
        """One pixel as RGB; alpha is composited onto white."""
        if self.color == 2:
            return row[3 * x:3 * x + 3]
        if self.color == 6:
            r, g, b, a = row[4 * x:4 * x + 4]
            return bytes((_white(r, a), _white(g, a), _white(b, a)))
        if self.color == 0:
            return bytes((row[x],)) * 3
        if self.color == 4:
            return bytes((_white(row[2 * x], row[2 * x + 1]),)) * 3
        index = row[x]
        return self.palette[3 * index:3 * index + 3].ljust(3, b"\0")


def decode_png(data: bytes, *, max_pixels: int = MAX_DECODE_PIXELS) -> DecodedPng:
    """Read an 8-bit, non-interlaced PNG (grey, RGB, palette, grey+alpha or RGBA)."""
    width, height = png_size(data)
    pos, idat, palette = 8, [], b""
    depth = color = interlace = None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise PngError("truncated PNG")
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if depth != 8 or color not in _CHANNELS or interlace != 0:
        raise PngError(f"unsupported PNG (bit depth {depth}, colour type {color}, interlace {interlace})")
    if width == 0 or height == 0 or width * height > max_pixels:
        raise PngError(f"{width}×{height} is too large to preview")
    if color == 3 and not palette:
        raise PngError("palette PNG without a palette")
    bpp = _CHANNELS[color]
    stride = width * bpp
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PngError(f"corrupt image data ({exc})") from None
    if len(raw) < height * (stride + 1):
        raise PngError("image data is shorter than the image")
    return DecodedPng(width, height, color, palette, _unfilter(raw, height, stride, bpp))


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> list[bytes]:
    prev = bytes(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = raw[start + 1:start + 1 + stride]
        if kind == 0:
            cur = line
        elif kind == 1:
            cur = _unsub(line, bpp)
        elif kind == 2:
            cur = _add_bytes(line, prev)
        elif kind == 3:
            cur = _unaverage(line, prev, bpp)
        elif kind == 4:
            cur = _unpaeth(line, prev, bpp)
        else:
            raise PngError(f"unknown PNG filter type {kind}")
        rows.append(cur)
        prev = cur
    return rows


_MASKS: dict[int, tuple[int, int]] = {}


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 of whole rows at once: SWAR arithmetic on Python's big integers."""
    n = len(a)
    masks = _MASKS.get(n)
    if masks is None:
        masks = _MASKS[n] = (int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big"))
    low7, high = masks
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low7) + (y & low7)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unsub(line: bytes, bpp: int) -> bytes:
    """Sub filter: each channel is a running sum mod 256 (accumulate and map run in C)."""
    out = bytearray(len(line))
    for c in range(bpp):
        out[c::bpp] = bytes(map((255).__and__, accumulate(line[c::bpp])))
    return bytes(out)


def _unaverage(line: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        out[i] = (out[i] + ((left + prev[i]) >> 1)) & 255
    return bytes(out)


def _unpaeth(line: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(line)
    for i in range(bpp):  # no left neighbour: the predictor is the byte above
        out[i] = (out[i] + prev[i]) & 255
    for i in range(bpp, len(out)):
        a, b, c = out[i - bpp], prev[i], prev[i - bpp]
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - c - c)
        out[i] = (out[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return bytes(out)


def _white(value: int, alpha: int) -> int:
    return (value * alpha + 255 * (255 - alpha)) // 255


def downscale(image: DecodedPng, side: int = PREVIEW_SIDE) -> tuple[int, int, list[bytes]]:
    """Nearest-sample to at most ``side`` pixels on the longest edge (never upscales); RGB rows."""
    width, height = image.width, image.height
    scale = max(1.0, max(width, height) / side)
    out_w, out_h = max(1, round(width / scale)), max(1, round(height / scale))
    cols = [min(width - 1, int((x + 0.5) * width / out_w)) for x in range(out_w)]
    rows = []
    for y in range(out_h):
        row = image.rows[min(height - 1, int((y + 0.5) * height / out_h))]
        if image.color == 2:
            rows.append(b"".join(row[3 * c:3 * c + 3] for c in cols))
        else:
            rows.append(b"".join(image.pixel(row, c) for c in cols))
    return out_w, out_h, rows


def png_preview(path: str | Path, side: int = PREVIEW_SIDE) -> bytes | None:
    """A small PNG of an image file, or None when it cannot be read (not PNG, too large, corrupt)."""
    from ..simulator.png import encode_png  # imported on first preview: most results have none

    try:
        image = decode_png(Path(path).read_bytes())
        while True:
            out_w, out_h, rows = downscale(image, side)
            preview = encode_png(out_w, out_h, rows, level=9)
            if len(preview) <= MAX_PREVIEW_BYTES:
                return preview
            if side <= 32:
                return None
            side //= 2
    except (OSError, PngError, ValueError, IndexError, struct.error):
        return None


def preview_base64(path: str | Path) -> str | None:
    preview = png_preview(path)
    return None if preview is None else base64.b64encode(preview).decode("ascii")
