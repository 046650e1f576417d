"""How the MCP server shows things to an LLM: job results, budgets, and small image previews.

Everything here is pure (no I/O besides reading a kept image file): ``server`` calls the
Toolkit and hands what comes back to these functions, which build the ``structured_content``
(validated by each tool's output schema) and the short text an LLM reads.

The preview is a downscaled PNG made without Pillow: ``decode_png`` reads 8-bit, non-interlaced
PNGs (grey, RGB, palette, with or without alpha) with ``zlib`` alone, ``downscale`` samples it to
at most ``PREVIEW_SIDE`` pixels a side, and the simulator's encoder writes the result. Anything it
cannot read (JPEG, 16-bit, interlaced, huge) simply gets no preview.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..jobs import FINAL, Job, JobState
from ..ledger import LimitStatus, resets_phrase
from ..money import format_usd, to_usd

# -- budgets ---------------------------------------------------------------------------------

MONEY_KINDS = ("daily", "monthly")
WINDOW_WORDS = {"daily": "today", "monthly": "this month", "concurrent": "running at once",
                "hourly": "started in the last hour"}
SCOPE_WORDS = {"account": "", "role": "role ", "guild": "this server's ", "global": "the operator's "}


def budget_items(limits: Sequence[LimitStatus]) -> list[dict[str, Any]]:
    """Every limit that applies, as JSON: money in dollars, counts in jobs, resets as ISO time."""
    items = []
    for status in limits:
        money = status.kind in MONEY_KINDS
        convert = to_usd if money else (lambda v: v)
        items.append({
            "scope": status.scope, "kind": status.kind, "unit": "usd" if money else "jobs",
            "limit": convert(status.limit), "used": convert(status.used), "remaining": convert(status.remaining),
            "resets_at": (datetime.fromtimestamp(status.resets_at, timezone.utc).isoformat()
                          if status.resets_at is not None else None),
        })
    return items


def budget_text(limits: Sequence[LimitStatus], now: float, tz: ZoneInfo) -> str:
    """``Budget left: $3.60 of $5.00 today (resets at 00:00 UTC, in 3 h 12 min); …`` — one line."""
    money = [s for s in limits if s.kind in MONEY_KINDS]
    if not money:
        return "No spending limit applies to this account."
    parts = [f"{SCOPE_WORDS.get(s.scope, '')}{format_usd(s.remaining)} of {format_usd(s.limit)} "
             f"{WINDOW_WORDS[s.kind]} ({resets_phrase(s.resets_at, now, tz)})" for s in money]
    return "Budget left: " + "; ".join(parts) + "."


def quota_lines(limits: Sequence[LimitStatus], now: float, tz: ZoneInfo) -> list[str]:
    """One line per limit, for ``get_quota``."""
    if not limits:
        return ["No limits apply to this account: it can spend without a cap."]
    lines = []
    for s in limits:
        where = f"{s.scope} {s.scope_id}".strip() if s.scope != "account" else "you"
        if s.kind in MONEY_KINDS:
            lines.append(f"- {where}: {format_usd(s.used)} of {format_usd(s.limit)} spent {WINDOW_WORDS[s.kind]}, "
                         f"{format_usd(s.remaining)} left ({resets_phrase(s.resets_at, now, tz)})")
        else:
            lines.append(f"- {where}: {s.used} of {s.limit} jobs {WINDOW_WORDS[s.kind]}, {s.remaining} more allowed")
    return lines


def money_left(limits: Sequence[LimitStatus]) -> int | None:
    """The smallest amount any money limit still allows, in micros (None: no money limit)."""
    left = [s.remaining for s in limits if s.kind in MONEY_KINDS]
    return min(left) if left else None


# -- jobs ------------------------------------------------------------------------------------

NEXT_FOR_ERROR = {
    "content_policy": "The provider's safety filter refused it: rephrase the prompt (or use another input image) "
                      "and try again.",
    "invalid_input": "Fix the arguments the message names and try again.",
    "media_download_failed": "The provider could not download an input image: pass a public https:// URL "
                             "that opens without a login.",
    "authentication": "The provider refused the operator's API key: tell the operator; retrying will not help.",
    "out_of_balance": "The operator's provider account is out of credit: tell the operator; retrying will not help.",
    "rate_limited": "The provider is rate-limiting: wait a minute, then try again.",
    "transient": "A temporary provider failure: trying again in a minute usually works.",
}


def cost_of(job: Job) -> tuple[int, str]:
    """(micros, status): what the job costs and whether that is charged, reserved or nothing."""
    if job.state is JobState.SUCCEEDED:
        return (job.actual_micros if job.actual_micros is not None else job.estimate_micros), "charged"
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        return 0, "not charged"
    return job.estimate_micros, "reserved"


def output_items(job: Job, *, show_paths: bool) -> list[dict[str, Any]]:
    items = []
    for output in job.outputs:
        item: dict[str, Any] = {"url": output.get("url") or "", "content_type": output.get("content_type"),
                                "width": output.get("width"), "height": output.get("height"),
                                "size_bytes": output.get("size")}
        if show_paths:
            item["path"] = output.get("path")
        items.append(item)
    return items


def next_step(job: Job, *, show_paths: bool = False) -> str:
    micros, _ = cost_of(job)
    if job.state is JobState.SUCCEEDED:
        kind = "images are ready; show the user the URLs" if len(job.outputs) > 1 else \
            "output is ready; show the user the URL"
        advice = " Provider URLs expire after a while (hours to days)" + (
            "; the local copy stays." if show_paths and any(o.get("path") for o in job.outputs) else ".")
        return f"Done: the {kind}.{advice}"
    if job.state is JobState.FAILED:
        return (NEXT_FOR_ERROR.get(job.error_kind or "", "Try again, or try another model.")
                + " Nothing was charged.")
    if job.state is JobState.CANCELLED:
        return "Cancelled; nothing was charged."
    if job.state is JobState.UNKNOWN:
        return ("The outcome is unknown (see error); do not simply retry, it may still produce output and be "
                f"charged. The {format_usd(micros)} stays reserved until an operator resolves it.")
    return (f"Not finished yet. Call wait_for_job with job_id \"{job.id}\" to keep waiting (up to 55 s per call), "
            f"get_job to check without waiting, or cancel_job to stop it. {format_usd(micros)} is reserved and "
            "charged only if it succeeds.")


def job_structured(job: Job, *, now: float, show_paths: bool, limits: Sequence[LimitStatus] | None = None,
                   warnings: Iterable[str] = (), message: str | None = None) -> dict[str, Any]:
    """A job as ``structured_content`` (see ``JOB_OUTPUT_SCHEMA``)."""
    micros, status = cost_of(job)
    data: dict[str, Any] = {
        "job_id": job.id, "state": job.state.value, "done": job.state in FINAL, "tool": job.tool,
        "cost_usd": to_usd(micros), "cost_status": status,
        "outputs": output_items(job, show_paths=show_paths),
        "seed": job.seed, "queue_position": job.queue_position,
        "elapsed_seconds": round(job.elapsed(now), 1),
        "error": job.error, "error_kind": job.error_kind,
        "next_step": next_step(job, show_paths=show_paths),
        "warnings": list(warnings),
    }
    if message:
        data["message"] = message
    if limits is not None:
        data["budget"] = budget_items(limits)
    if job.origin.get("simulated"):
        data["simulated"] = True
    return data


def job_text(job: Job, *, now: float, show_paths: bool, limits: Sequence[LimitStatus] | None = None,
             tz: ZoneInfo | None = None, warnings: Iterable[str] = (), message: str | None = None) -> str:
    """The few lines an LLM reads: state and cost, outputs, what to do next, the budget left."""
    micros, status = cost_of(job)
    head = f"Job {job.id} ({job.tool}): {job.state.value}"
    if job.state is JobState.QUEUED and job.queue_position is not None:
        head += f", queue position {job.queue_position + 1}"
    head += f" after {job.elapsed(now):.0f} s; {format_usd(micros)} {status}."
    if job.seed is not None:
        head += f" Seed {job.seed}."
    lines = [head]
    if message:
        lines.append(message)
    noun = "Image" if job.tool in _IMAGE_TOOLS else "Video"
    for i, output in enumerate(job.outputs):
        label = noun if len(job.outputs) == 1 else f"{noun} {i + 1}"
        lines.append(f"{label}: {output.get('url')}")
        if show_paths and output.get("path"):
            lines.append(f"  local file: {output['path']}")
    if job.error:
        lines.append(("Note: " if job.state is JobState.SUCCEEDED else "Error: ") + job.error)
    elif job.state is JobState.RUNNING and job.logs:
        lines.append(f"Latest log: {job.logs[-1][:200]}")
    lines.append(next_step(job, show_paths=show_paths))
    lines.extend(warnings)
    if limits is not None and tz is not None:
        lines.append(budget_text(limits, now, tz))
    if job.origin.get("simulated"):
        lines.append("SIMULATED: made by the local provider simulator, not a real model; nothing was billed.")
    return "\n".join(lines)


def _image_tools() -> frozenset[str]:
    from ..catalog import CATALOG, OutputKind

    return frozenset(t for t, s in CATALOG.items() if s.output.kind is OutputKind.IMAGES)


_IMAGE_TOOLS = _image_tools()


def job_line(job: Job, *, tz: ZoneInfo) -> str:
    """One line per job for ``list_jobs``."""
    micros, status = cost_of(job)
    when = datetime.fromtimestamp(job.created_at, tz).strftime("%Y-%m-%d %H:%M")
    tail = ""
    if job.outputs:
        tail = f" → {job.outputs[0].get('url')}"
    elif job.error:
        tail = f" — {job.error[:120]}"
    return f"- {job.id} {when} {job.tool}: {job.state.value}, {format_usd(micros)} {status}{tail}"


def job_summary(job: Job) -> dict[str, Any]:
    micros, status = cost_of(job)
    return {"job_id": job.id, "tool": job.tool, "state": job.state.value, "account": job.account,
            "cost_usd": to_usd(micros), "cost_status": status,
            "created_at": datetime.fromtimestamp(job.created_at, timezone.utc).isoformat(),
            "output_url": job.outputs[0].get("url") if job.outputs else None, "error": job.error}


def progress_message(job: Job, message: str, elapsed: float) -> str:
    """``[running · 12 s] step 3/10`` — what a host shows next to its spinner."""
    state = job.state.value
    if job.state is JobState.QUEUED and job.queue_position is not None:
        state += f" #{job.queue_position + 1}"
    return f"[{state} · {elapsed:.0f} s] {message}"


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
