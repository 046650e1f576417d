"""The simulator's outputs: real, playable media that say "SIMULATED" on them.

Videos are 320×180 H.264 MP4s (``h264.py`` + ``mp4.py``): a static dark band with "SIMULATED" and
the first words of the prompt above a colour gradient with a white bar sweeping across. Images are
PNGs (``png.py``) with the same band over a gradient.

Speed matters because a benchmark may run 1,000 jobs at once. Only the text band depends on the
prompt; the moving part is identical for every clip, so its macroblocks are built once per process
and each new text costs one band (a few ms). ``MediaStore`` caches finished files by (kind, text,
size), de-duplicates concurrent requests for the same file and encodes in a worker thread so the
event loop keeps answering polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from . import h264, mp4
from .font import ADVANCE, GLYPH_HEIGHT, draw_text, text_width, wrap_words
from .png import encode_png

VIDEO_WIDTH = 320
VIDEO_HEIGHT = 180
VIDEO_FPS = 2
VIDEO_FRAMES = 4  # 2 s; every frame is ~92 KB of PCM, so the file stays under 400 KB
BAND_MB_ROWS = 5  # the text band is the top 80 px
MAX_IMAGE_SIDE = 512

_FORMAT = h264.StreamFormat(VIDEO_WIDTH, VIDEO_HEIGHT)
_WHITE, _BAND_Y, _PAD_Y, _NEUTRAL = 235, 40, 16, 128


def caption(prompt: str, max_words: int = 8) -> str:
    """The words stamped onto media (and part of the cache key): the prompt's start, normalised."""
    words = re.sub(r"\s+", " ", prompt).strip().split(" ")
    return " ".join(words[:max_words])[:60].upper()


# -- video ----------------------------------------------------------------------------------

def _band_stream(text: str) -> bytes:
    """Macroblocks of the static text band (the same in every frame of a clip)."""
    cw, height = _FORMAT.coded_width, BAND_MB_ROWS * 16
    y = bytearray([_BAND_Y]) * (cw * height)
    u = bytes([_NEUTRAL]) * (cw // 2 * height // 2)
    title_x = (VIDEO_WIDTH - text_width("SIMULATED", 4)) // 2
    draw_text(y, width=cw, height=height, x=title_x, y=6, text="SIMULATED", scale=4, pixel=bytes([_WHITE]))
    lines = wrap_words(text, (VIDEO_WIDTH - 8) // (ADVANCE * 2), 2) if text else []
    for i, line in enumerate(lines):
        draw_text(y, width=cw, height=height, x=(VIDEO_WIDTH - text_width(line, 2)) // 2,
                  y=44 + i * (GLYPH_HEIGHT * 2 + 3), text=line, scale=2, pixel=bytes([_WHITE]))
    return h264.macroblock_stream(y, u, u, coded_width=cw, mb_rows=range(BAND_MB_ROWS))


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, int(round(value))))


@lru_cache(maxsize=1)
def _moving_streams() -> tuple[bytes, ...]:
    """Macroblocks below the band, per frame: a hue gradient drifting left and a sweeping bar."""
    cw = _FORMAT.coded_width
    rows = _FORMAT.mb_rows * 16 - BAND_MB_ROWS * 16
    visible = VIDEO_HEIGHT - BAND_MB_ROWS * 16
    bar_width = 32
    streams = []
    for frame in range(VIDEO_FRAMES):
        phase = frame / VIDEO_FRAMES
        luma = bytearray(_clamp(120 + 70 * math.sin(2 * math.pi * (2 * x / cw + phase)), 16, 235) for x in range(cw))
        cu = bytearray(_clamp(128 + 100 * math.cos(2 * math.pi * (x / (cw // 2) + phase)), 16, 240)
                       for x in range(cw // 2))
        cv = bytearray(_clamp(128 + 100 * math.sin(2 * math.pi * (x / (cw // 2) + phase)), 16, 240)
                       for x in range(cw // 2))
        bar_x = (frame * (VIDEO_WIDTH - bar_width) // max(1, VIDEO_FRAMES - 1)) // 2 * 2
        luma[bar_x:bar_x + bar_width] = bytes([_WHITE]) * bar_width
        cu[bar_x // 2:(bar_x + bar_width) // 2] = bytes([_NEUTRAL]) * (bar_width // 2)
        cv[bar_x // 2:(bar_x + bar_width) // 2] = bytes([_NEUTRAL]) * (bar_width // 2)
        pad = rows - visible  # rows below the picture are cropped away by the SPS
        y = bytes(luma) * visible + bytes([_PAD_Y]) * (cw * pad)
        u = bytes(cu) * (rows // 2)
        v = bytes(cv) * (rows // 2)
        streams.append(h264.macroblock_stream(y, u, v, coded_width=cw, mb_rows=range(rows // 16)))
    return tuple(streams)


def render_video(text: str) -> bytes:
    """A playable MP4 that shows "SIMULATED" and ``text``."""
    band = _band_stream(text)
    samples = [[_FORMAT.idr_slice(band + moving, idr_pic_id=i)] for i, moving in enumerate(_moving_streams())]
    return mp4.mux(width=VIDEO_WIDTH, height=VIDEO_HEIGHT, sps=_FORMAT.sps(), pps=_FORMAT.pps(),
                   samples=samples, fps=VIDEO_FPS)


# -- images ---------------------------------------------------------------------------------

def image_pixels(width: int, height: int) -> tuple[int, int]:
    """The size actually drawn for a requested size: scaled so the longest side is ≤ 512."""
    scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_image(text: str, width: int, height: int) -> bytes:
    """A PNG of (at most 512 px on the long side of) ``width``×``height`` saying "SIMULATED"."""
    w, h = image_pixels(width, height)
    row = bytearray()
    for x in range(w):
        t = 2 * math.pi * x / w
        row += bytes((_clamp(150 + 90 * math.cos(t), 0, 255), _clamp(150 + 90 * math.cos(t - 2.1), 0, 255),
                      _clamp(150 + 90 * math.cos(t + 2.1), 0, 255)))
    scale = max(1, min(8, (w - 8) // text_width("SIMULATED", 1)))
    small = max(1, scale // 2)
    lines = [f"{width}X{height}", *wrap_words(text, max(1, (w - 4) // (ADVANCE * small)), 2)]
    top = max(2, scale * 2)
    band_h = min(h, top + GLYPH_HEIGHT * scale + len(lines) * (GLYPH_HEIGHT + 3) * small + top)
    plane = bytearray(bytes([30, 30, 36]) * w) * band_h + bytearray(row) * (h - band_h)
    draw_text(plane, width=w, height=h, x=(w - text_width("SIMULATED", scale)) // 2, y=top,
              text="SIMULATED", scale=scale, pixel=b"\xff\xff\xff")
    y = top + GLYPH_HEIGHT * scale + 3 * small
    for line in lines:
        draw_text(plane, width=w, height=h, x=(w - text_width(line, small)) // 2, y=y, text=line, scale=small,
                  pixel=b"\xff\xff\xff")
        y += (GLYPH_HEIGHT + 3) * small
    stride = w * 3
    return encode_png(w, h, (bytes(plane[i * stride:(i + 1) * stride]) for i in range(h)))


# -- the cache ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MediaSpec:
    """Everything needed to (re)create one file; its ``key`` appears in the file's URL."""

    kind: str  # "video" | "image"
    text: str
    width: int = VIDEO_WIDTH
    height: int = VIDEO_HEIGHT

    @property
    def key(self) -> str:
        raw = f"{self.kind}\x00{self.text}\x00{self.width}x{self.height}".encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    @property
    def content_type(self) -> str:
        return "video/mp4" if self.kind == "video" else "image/png"

    @property
    def extension(self) -> str:
        return "mp4" if self.kind == "video" else "png"

    def render(self) -> bytes:
        return render_video(self.text) if self.kind == "video" else render_image(self.text, self.width, self.height)


class MediaStore:
    """Generated files by key: an LRU of bytes, one encode per key even under concurrency.

    Specs are remembered forever (they are tiny), so a URL handed out stays valid after its bytes
    were evicted: the file is simply rendered again.
    """

    def __init__(self, max_entries: int = 128) -> None:
        self._specs: dict[str, MediaSpec] = {}
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._max = max(1, max_entries)
        self.renders = 0

    def register(self, spec: MediaSpec) -> str:
        self._specs[spec.key] = spec
        return spec.key

    def spec(self, key: str) -> MediaSpec | None:
        return self._specs.get(key)

    async def get(self, key: str) -> bytes | None:
        """The file's bytes (rendering them in a thread if needed), or None for an unknown key."""
        spec = self._specs.get(key)
        if spec is None:
            return None
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        task = self._pending.get(key)
        if task is None:
            # A task of its own, so a client that hangs up mid-render cancels only its own wait.
            task = asyncio.ensure_future(self._render(key, spec))
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _render(self, key: str, spec: MediaSpec) -> bytes:
        try:
            data = await asyncio.to_thread(spec.render)
        finally:
            self._pending.pop(key, None)
        self.renders += 1
        self._data[key] = data
        while len(self._data) > self._max:
            self._data.popitem(last=False)
        return data
