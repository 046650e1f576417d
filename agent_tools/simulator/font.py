"""A 5×7 bitmap font, enough to stamp "SIMULATED" and a few prompt words onto generated media.

The simulator must not depend on Pillow, so text is drawn from this table: each glyph is seven rows
of five cells. Only upper case exists; ``draw_text`` upper-cases its input and draws unknown
characters as ``?``. Drawing writes runs of pixels with slice assignment, which keeps it fast in
pure Python on planes of any bytes-per-pixel (a luma plane, or packed RGB for PNG).
"""

from __future__ import annotations

from functools import lru_cache

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7
ADVANCE = GLYPH_WIDTH + 1  # one blank column between glyphs

_GLYPHS_SOURCE = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "'": "..#.. ..#.. .#... ..... ..... ..... .....",
    '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "_": "..... ..... ..... ..... ..... ..... #####",
}

GLYPHS: dict[str, tuple[str, ...]] = {ch: tuple(rows.split()) for ch, rows in _GLYPHS_SOURCE.items()}


def text_width(text: str, scale: int = 1) -> int:
    """Pixel width of ``text`` drawn at ``scale`` (no trailing gap)."""
    return max(0, len(text) * ADVANCE * scale - scale)


@lru_cache(maxsize=256)
def _runs(text: str, scale: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each pixel row of the rendered text, the [start, end) x-ranges that are ink."""
    rows: list[tuple[tuple[int, int], ...]] = []
    for gy in range(GLYPH_HEIGHT):
        runs: list[tuple[int, int]] = []
        for i, ch in enumerate(text):
            row = GLYPHS.get(ch, GLYPHS["?"])[gy]
            x0 = i * ADVANCE * scale
            gx = 0
            while gx < GLYPH_WIDTH:
                if row[gx] == "#":
                    start = gx
                    while gx < GLYPH_WIDTH and row[gx] == "#":
                        gx += 1
                    runs.append((x0 + start * scale, x0 + gx * scale))
                else:
                    gx += 1
        rows.extend([tuple(runs)] * scale)
    return tuple(rows)


def draw_text(plane: bytearray, *, width: int, height: int, x: int, y: int, text: str, scale: int,
              pixel: bytes) -> None:
    """Draw ``text`` into a packed plane of ``width``×``height`` pixels of ``len(pixel)`` bytes each.

    Clipped at the plane's edges, so callers can place text without measuring it first.
    """
    text = text.upper()
    bpp = len(pixel)
    stride = width * bpp
    for dy, runs in enumerate(_runs(text, scale)):
        py = y + dy
        if not 0 <= py < height:
            continue
        base = py * stride
        for start, end in runs:
            x0, x1 = max(0, x + start), min(width, x + end)
            if x0 < x1:
                plane[base + x0 * bpp: base + x1 * bpp] = pixel * (x1 - x0)


def wrap_words(text: str, max_chars: int, max_lines: int) -> list[str]:
    """Greedy word wrap to at most ``max_lines`` lines; overflow is cut and marked with ``..``."""
    words = text.upper().split()
    lines: list[str] = []
    current = ""
    for word in words:
        word = word[:max_chars]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= max_chars:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines:
            break
    else:
        if current:
            lines.append(current)
        return lines
    last = lines[-1]
    lines[-1] = (last[: max_chars - 2] + "..") if len(last) > max_chars - 2 else last + ".."
    return lines
