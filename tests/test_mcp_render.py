"""The MCP server's pure-Python PNG preview, and budgets and job results in words (``agent.results``)."""

from __future__ import annotations

import random
import struct
import zlib
from zoneinfo import ZoneInfo

import pytest

from agent_tools.agent import results
from agent_tools.mcp_server import render as mcp_render
from agent_tools.jobs import Job, JobState
from agent_tools.ledger import LimitStatus
from agent_tools.simulator.media import render_image

SIG = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def encode(width: int, height: int, color: int, rows: list[bytes], filters: list[int], *, palette: bytes = b"",
           depth: int = 8, interlace: int = 0) -> bytes:
    """A reference PNG encoder that uses the given filter types row by row (the decoder must undo each)."""
    bpp = CHANNELS[color]
    prev, raw = bytes(len(rows[0])), bytearray()
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        raw.append(kind)
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            raw.append((value - (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]) & 255)
        prev = row
    data = SIG + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace))
    if palette:
        data += _chunk(b"PLTE", palette)
    return data + _chunk(b"IDAT", zlib.compress(bytes(raw))) + _chunk(b"IEND", b"")


def noise(width: int, height: int, bpp: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(rng.randrange(256) for _ in range(width * bpp)) for _ in range(height)]


@pytest.mark.parametrize("color", [0, 2, 3, 4, 6])
def test_every_filter_and_colour_type_decodes_exactly(color):
    width, height = 13, 11
    rows = noise(width, height, CHANNELS[color], seed=color)
    palette = bytes(range(256)) * 3 if color == 3 else b""
    image = mcp_render.decode_png(encode(width, height, color, rows, [0, 1, 2, 3, 4], palette=palette))
    assert (image.width, image.height, image.color) == (width, height, color)
    assert image.rows == rows


def test_alpha_is_composited_on_white_and_palette_is_looked_up():
    rgba = mcp_render.decode_png(encode(1, 1, 6, [bytes((0, 0, 0, 0))], [0]))
    assert rgba.pixel(rgba.rows[0], 0) == b"\xff\xff\xff"
    grey_alpha = mcp_render.decode_png(encode(1, 1, 4, [bytes((0, 255))], [0]))
    assert grey_alpha.pixel(grey_alpha.rows[0], 0) == b"\x00\x00\x00"
    pal = mcp_render.decode_png(encode(2, 1, 3, [bytes((1, 0))], [0], palette=b"\x01\x02\x03\x0a\x0b\x0c"))
    assert [pal.pixel(pal.rows[0], x) for x in (0, 1)] == [b"\x0a\x0b\x0c", b"\x01\x02\x03"]


def test_the_simulators_image_previews_within_limits(tmp_path):
    path = tmp_path / "poster.png"
    path.write_bytes(render_image("a poster of a fox", 1024, 576))
    preview = mcp_render.png_preview(path)
    assert preview is not None and preview.startswith(SIG)
    image = mcp_render.decode_png(preview)
    assert (image.width, image.height) == (256, 144)
    assert len(preview) < 20_000


def test_a_noisy_photo_sized_image_stays_small(tmp_path):
    width, height = 768, 512
    path = tmp_path / "noise.png"
    path.write_bytes(encode(width, height, 2, noise(width, height, 3), [4]))  # Paeth: the slow filter
    preview = mcp_render.png_preview(path)
    assert preview is not None and len(preview) <= mcp_render.MAX_PREVIEW_BYTES
    assert max(mcp_render.png_size(preview)) == 256


def test_small_images_are_not_upscaled(tmp_path):
    path = tmp_path / "tiny.png"
    path.write_bytes(encode(3, 2, 2, noise(3, 2, 3), [0]))
    assert mcp_render.png_size(mcp_render.png_preview(path)) == (3, 2)


@pytest.mark.parametrize("data", [
    b"\xff\xd8\xff\xe0 a JPEG",
    b"",
    encode(2, 2, 2, noise(2, 2, 6), [0], depth=16),
    encode(2, 2, 2, noise(2, 2, 3), [0], interlace=1),
    encode(2, 2, 2, noise(2, 2, 3), [0])[:-30],
    SIG + _chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)),
])
def test_unreadable_images_get_no_preview(tmp_path, data):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert mcp_render.png_preview(path) is None


def test_missing_file_gets_no_preview(tmp_path):
    assert mcp_render.png_preview(tmp_path / "gone.png") is None


# -- words ------------------------------------------------------------------------------------

UTC = ZoneInfo("UTC")
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def test_budget_in_words_and_json():
    limits = [LimitStatus("account", "alice", "daily", 5_000_000, 1_400_000, NOW + 6 * 3600 + 120),
              LimitStatus("account", "alice", "concurrent", 2, 1, None)]
    text = results.budget_text(limits, NOW, UTC)
    assert text.startswith("Budget left: $3.60 of $5.00 today (resets at 04:15 UTC, in 6 h 2 min)")
    items = results.budget_items(limits)
    assert items[0] == {"scope": "account", "kind": "daily", "unit": "usd", "limit": 5.0, "used": 1.4,
                        "remaining": 3.6, "resets_at": "2023-11-15T04:15:20+00:00"}
    assert items[1]["unit"] == "jobs" and items[1]["remaining"] == 1 and items[1]["resets_at"] is None
    assert results.money_left(limits) == 3_600_000
    assert results.budget_text([], NOW, UTC) == "No spending limit applies to this account."


def _job(**fields) -> Job:
    base = dict(id="j1", account="alice", tool="pika_text_to_video", provider="fal", endpoint_id="fal-ai/pika",
                params={}, state=JobState.RUNNING, estimate_micros=400_000, created_at=NOW - 30, updated_at=NOW)
    return Job(**(base | fields))


def test_an_unfinished_job_says_to_wait_for_it():
    job = _job()
    data = results.job_structured(job, now=NOW, show_paths=True)
    assert data["done"] is False and data["cost_status"] == "reserved" and data["cost_usd"] == 0.4
    assert "wait_for_job" in data["next_step"] and '"j1"' in data["next_step"]
    text = results.job_text(job, now=NOW, show_paths=True)
    assert text.startswith("Job j1 (pika_text_to_video): running after 30 s; $0.40 reserved.")


def test_a_failed_job_costs_nothing_and_says_what_to_do():
    job = _job(state=JobState.FAILED, error="The prompt was refused.", error_kind="content_policy", actual_micros=0)
    data = results.job_structured(job, now=NOW, show_paths=False)
    assert data["cost_usd"] == 0 and data["cost_status"] == "not charged"
    assert "rephrase" in data["next_step"] and "Nothing was charged" in data["next_step"]


def test_paths_only_when_allowed():
    job = _job(state=JobState.SUCCEEDED, actual_micros=400_000,
               outputs=[{"url": "https://cdn/x.mp4", "path": "/srv/media/x.mp4", "content_type": "video/mp4"}])
    remote = results.job_structured(job, now=NOW, show_paths=False)
    assert "path" not in remote["outputs"][0] and "local copy" not in remote["next_step"]
    assert "/srv/media" not in results.job_text(job, now=NOW, show_paths=False)
    local = results.job_structured(job, now=NOW, show_paths=True)
    assert local["outputs"][0]["path"] == "/srv/media/x.mp4"
    assert "local file: /srv/media/x.mp4" in results.job_text(job, now=NOW, show_paths=True)
